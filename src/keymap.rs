//! Key bindings: parsing key strings (`q`, `ctrl-r`, `f5`, `shift-tab`), the embedded
//! defaults, and the user's overrides from `[keys]` in config.
//!
//! A key string is `[modifier-]...key`: modifiers `ctrl`, `alt`, `shift`; keys are a single
//! character or one of the names in [`NAMED_KEYS`] (`f1`–`f12` too). Case matters for
//! characters (`Q` is shift-q) and not for names (`Ctrl-R` = `ctrl-r`).
//!
//! Overrides replace the default keys of the actions they name. A key the user binds is taken
//! away from any action that had it by default, so `zoom = ["q"]` moves `q` to zoom; binding
//! one key to two actions in the same scope in config is an error.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::action::{Action, Scope};

/// A key independent of the terminal library: what a binding matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Char(char),
    F(u8),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Insert,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Space,
}

/// Names accepted for non-character keys.
pub const NAMED_KEYS: &[(&str, Key)] = &[
    ("enter", Key::Enter),
    ("esc", Key::Esc),
    ("tab", Key::Tab),
    ("backtab", Key::BackTab),
    ("backspace", Key::Backspace),
    ("delete", Key::Delete),
    ("insert", Key::Insert),
    ("up", Key::Up),
    ("down", Key::Down),
    ("left", Key::Left),
    ("right", Key::Right),
    ("home", Key::Home),
    ("end", Key::End),
    ("pageup", Key::PageUp),
    ("pagedown", Key::PageDown),
    ("space", Key::Space),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyBinding {
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
    pub key: Key,
}

impl KeyBinding {
    pub const fn plain(key: Key) -> Self {
        KeyBinding {
            ctrl: false,
            alt: false,
            shift: false,
            key,
        }
    }

    /// The binding a terminal key event stands for. Shift is folded into characters
    /// (`shift` + `?` is just `?`), and `shift-tab` arrives as back-tab.
    pub fn from_event(event: &KeyEvent) -> Option<Self> {
        let m = event.modifiers;
        let key = match event.code {
            KeyCode::Char(' ') => Key::Space,
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::F(n) => Key::F(n),
            KeyCode::Enter => Key::Enter,
            KeyCode::Esc => Key::Esc,
            KeyCode::Tab => Key::Tab,
            KeyCode::BackTab => Key::BackTab,
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Delete => Key::Delete,
            KeyCode::Insert => Key::Insert,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::Left => Key::Left,
            KeyCode::Right => Key::Right,
            KeyCode::Home => Key::Home,
            KeyCode::End => Key::End,
            KeyCode::PageUp => Key::PageUp,
            KeyCode::PageDown => Key::PageDown,
            _ => return None,
        };
        let ctrl = m.contains(KeyModifiers::CONTROL);
        let alt = m.contains(KeyModifiers::ALT);
        let shift = m.contains(KeyModifiers::SHIFT);
        let mut binding = KeyBinding {
            ctrl,
            alt,
            shift,
            key,
        };
        binding.normalize();
        Some(binding)
    }

    /// Shift is part of a printable character; shift-tab is back-tab. Terminals report
    /// ctrl-letters in either case, so they are kept lower-case.
    fn normalize(&mut self) {
        match self.key {
            Key::Char(c) if self.ctrl => {
                self.key = Key::Char(c.to_ascii_lowercase());
                self.shift = false;
            }
            Key::Char(_) | Key::Space => self.shift = false,
            Key::Tab if self.shift => {
                self.key = Key::BackTab;
                self.shift = false;
            }
            Key::BackTab => self.shift = false,
            _ => {}
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "expected a key like `q`, `ctrl-r`, `f5`, `shift-tab` or `pageup`, got `{text}` ({why})"
            )
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let mut binding = KeyBinding::plain(Key::Space);
        let mut rest = text;
        // A lone `-` is the minus key; `ctrl--` is ctrl and minus.
        while let Some((head, tail)) = rest.split_once('-') {
            if tail.is_empty() && head.is_empty() {
                break;
            }
            match head.to_ascii_lowercase().as_str() {
                "ctrl" | "control" => binding.ctrl = true,
                "alt" | "meta" => binding.alt = true,
                "shift" => binding.shift = true,
                _ => break,
            }
            rest = tail;
            if rest.is_empty() {
                return Err(bad("a modifier needs a key after it"));
            }
        }
        let mut chars = rest.chars();
        binding.key = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if c.is_control() {
                    return Err(bad("control characters cannot be bound"));
                }
                if c == ' ' { Key::Space } else { Key::Char(c) }
            }
            _ => {
                let lower = rest.to_ascii_lowercase();
                if let Some((_, key)) = NAMED_KEYS.iter().find(|(n, _)| *n == lower) {
                    *key
                } else if let Some(n) = lower
                    .strip_prefix('f')
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=12).contains(n))
                {
                    Key::F(n)
                } else {
                    return Err(bad("unknown key name"));
                }
            }
        };
        binding.normalize();
        Ok(binding)
    }
}

impl fmt::Display for KeyBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        if self.shift {
            f.write_str("shift-")?;
        }
        match self.key {
            Key::Char(c) => write!(f, "{c}"),
            Key::F(n) => write!(f, "f{n}"),
            Key::BackTab => f.write_str("shift-tab"),
            other => {
                let name = NAMED_KEYS
                    .iter()
                    .find(|(_, k)| *k == other)
                    .map_or("?", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

impl Serialize for KeyBinding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyBinding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        KeyBinding::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One key or a list of keys, as written in `[keys]` (`quit = "q"` or `quit = ["q", "ctrl-c"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum KeyList {
    One(KeyBinding),
    Many(Vec<KeyBinding>),
}

impl<'de> Deserialize<'de> for KeyList {
    // By hand rather than `untagged`, so that a bad key keeps its own message.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KeyList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key like \"q\" or a list of keys like [\"ctrl-r\", \"f5\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyList, E> {
                KeyBinding::parse(v).map(KeyList::One).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KeyList, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = seq.next_element::<KeyBinding>()? {
                    keys.push(k);
                }
                Ok(KeyList::Many(keys))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl KeyList {
    pub fn keys(&self) -> &[KeyBinding] {
        match self {
            KeyList::One(k) => std::slice::from_ref(k),
            KeyList::Many(v) => v,
        }
    }
}

/// The `[keys]` table: action name → keys, in the order the parser gives them. Unknown action names fail to
/// deserialize (serde names the valid ones).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeysConfig(pub Vec<(Action, KeyList)>);

impl KeysConfig {
    pub fn iter(&self) -> impl Iterator<Item = &(Action, KeyList)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for KeysConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (action, keys) in &self.0 {
            map.serialize_entry(action, keys)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for KeysConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KeysConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of action names to keys")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeysConfig, A::Error> {
                let mut entries = Vec::new();
                while let Some((action, keys)) = map.next_entry::<Action, KeyList>()? {
                    entries.push((action, keys));
                }
                Ok(KeysConfig(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn defaults() -> Vec<(Action, Vec<KeyBinding>)> {
    use Key::*;
    let k = |key| KeyBinding::plain(key);
    let ctrl = |c| KeyBinding {
        ctrl: true,
        ..KeyBinding::plain(Char(c))
    };
    vec![
        (Action::Quit, vec![k(Char('q')), ctrl('c')]),
        (Action::Help, vec![k(Char('?'))]),
        (Action::FocusNext, vec![k(Tab)]),
        (Action::FocusPrev, vec![k(BackTab)]),
        (Action::FocusStack, vec![k(Char('1'))]),
        (Action::FocusThroughput, vec![k(Char('2'))]),
        (Action::FocusScores, vec![k(Char('3'))]),
        (Action::FocusQuery, vec![k(Char('4'))]),
        (Action::Zoom, vec![k(Char('z'))]),
        (Action::FireAnomaly, vec![k(Char('a'))]),
        (Action::TogglePause, vec![k(Char('p'))]),
        (Action::RateUp, vec![k(Char('+')), k(Char('='))]),
        (Action::RateDown, vec![k(Char('-'))]),
        (Action::DeployStack, vec![ctrl('d')]),
        (Action::DeleteStack, vec![ctrl('x')]),
        (Action::EditQuery, vec![k(Enter)]),
        (Action::RunQuery, vec![ctrl('r'), k(F(5))]),
        (Action::CancelQuery, vec![ctrl('c')]),
        (Action::LeaveEditor, vec![k(Esc)]),
        (Action::Examples, vec![k(Char('e'))]),
        (Action::History, vec![k(Char('h'))]),
        (Action::ExportCsv, vec![k(Char('x'))]),
        (Action::ScrollUp, vec![k(Up), k(Char('k'))]),
        (Action::ScrollDown, vec![k(Down), k(Char('j'))]),
        (Action::PageUp, vec![k(PageUp)]),
        (Action::PageDown, vec![k(PageDown)]),
        (Action::ScrollLeft, vec![k(Left)]),
        (Action::ScrollRight, vec![k(Right)]),
        (Action::NextDevice, vec![k(Char('d'))]),
        (Action::PrevDevice, vec![k(Char('D'))]),
    ]
}

/// The bindings in force: embedded defaults with the user's overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    /// In `BINDABLE` order; an action may have no keys.
    bindings: Vec<(Action, Vec<KeyBinding>)>,
}

impl Keymap {
    /// Applies `overrides` to the defaults. Errors name the action key (`keys.zoom`) and say
    /// which other action already has the key.
    pub fn new(overrides: &KeysConfig) -> Result<Self, (String, String)> {
        let mut bindings = defaults();
        // Two user bindings for the same key in the same scope would make one of them dead.
        let mut seen: BTreeMap<(KeyBinding, Scope), &Action> = BTreeMap::new();
        for (action, keys) in overrides.iter() {
            let name = action.name().unwrap_or("?");
            for key in keys.keys() {
                if let Some(other) = seen.insert((*key, action.scope()), action)
                    && other != action
                {
                    return Err((
                        format!("keys.{name}"),
                        format!(
                            "`{key}` is also bound to {} in [keys]; a key can do one thing",
                            other.name().unwrap_or("?")
                        ),
                    ));
                }
            }
        }
        for (action, keys) in overrides.iter() {
            for (other, other_keys) in bindings.iter_mut() {
                if other.scope() == action.scope() {
                    other_keys.retain(|k| !keys.keys().contains(k));
                }
            }
            if let Some((_, slot)) = bindings.iter_mut().find(|(a, _)| a == action) {
                *slot = keys.keys().to_vec();
            }
        }
        Ok(Keymap { bindings })
    }

    /// The action for a key press. A pane's bindings win while it has focus (`pane`; or
    /// `Scope::Global` for a pane without bindings of its own). In the Scores pane the Query
    /// pane's scroll keys scroll the alert history.
    pub fn action_for(&self, key: &KeyBinding, pane: Scope) -> Option<Action> {
        let find = |scope: Scope| {
            self.bindings
                .iter()
                .find(|(a, keys)| a.scope() == scope && keys.contains(key))
                .map(|(a, _)| a.clone())
        };
        if pane != Scope::Global
            && let Some(a) = find(pane)
        {
            return Some(a);
        }
        if pane == Scope::ScoresPane
            && let Some(
                a @ (Action::ScrollUp | Action::ScrollDown | Action::PageUp | Action::PageDown),
            ) = find(Scope::QueryPane)
        {
            return Some(a);
        }
        find(Scope::Global)
    }

    /// The keys bound to `action`, in the order given.
    pub fn keys_for(&self, action: &Action) -> &[KeyBinding] {
        self.bindings
            .iter()
            .find(|(a, _)| a == action)
            .map_or(&[], |(_, k)| k.as_slice())
    }

    /// `q, ctrl-c` — as the help overlay and status line show it.
    pub fn describe(&self, action: &Action) -> String {
        self.keys_for(action)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The effective bindings as a `[keys]` table (for `config print`).
    pub fn to_config(&self) -> KeysConfig {
        KeysConfig(
            self.bindings
                .iter()
                .map(|(a, k)| (a.clone(), KeyList::Many(k.clone())))
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Action, &[KeyBinding])> {
        self.bindings.iter().map(|(a, k)| (a, k.as_slice()))
    }
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            bindings: defaults(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::BINDABLE;

    fn key(s: &str) -> KeyBinding {
        KeyBinding::parse(s).unwrap()
    }

    #[test]
    fn parses_and_prints_round_trip() {
        for s in [
            "q",
            "?",
            "+",
            "-",
            "ctrl-r",
            "ctrl--",
            "f5",
            "f12",
            "shift-tab",
            "enter",
            "esc",
            "alt-x",
            "ctrl-alt-del",
            "pageup",
            "space",
            "Q",
        ] {
            let parsed = KeyBinding::parse(s);
            if s == "ctrl-alt-del" {
                assert!(parsed.is_err(), "`del` is not a key name");
                continue;
            }
            let parsed = parsed.unwrap();
            assert_eq!(
                KeyBinding::parse(&parsed.to_string()).unwrap(),
                parsed,
                "{s}"
            );
        }
        assert_eq!(key("Ctrl-R"), key("ctrl-r"));
        assert_eq!(key("shift-tab").key, Key::BackTab);
        assert_eq!(key("-").key, Key::Char('-'));
        assert_eq!(key("ctrl--").key, Key::Char('-'));
        assert_ne!(key("Q"), key("q"));
    }

    #[test]
    fn rejects_what_is_not_a_key() {
        for s in ["", "ctrl-", "f13", "f0", "banana", "ctrl-banana", "\u{7}"] {
            let err = KeyBinding::parse(s).unwrap_err();
            assert!(err.starts_with("expected a key like"), "{s}: {err}");
        }
    }

    #[test]
    fn events_fold_shift_into_characters() {
        let ev = |code, m| KeyEvent::new(code, m);
        let b = KeyBinding::from_event(&ev(KeyCode::Char('?'), KeyModifiers::SHIFT)).unwrap();
        assert_eq!(b, key("?"));
        let b = KeyBinding::from_event(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)).unwrap();
        assert_eq!(b, key("shift-tab"));
        let b = KeyBinding::from_event(&ev(KeyCode::Char('R'), KeyModifiers::CONTROL)).unwrap();
        assert_eq!(b, key("ctrl-r"));
    }

    #[test]
    fn defaults_follow_the_design() {
        let km = Keymap::default();
        assert_eq!(km.action_for(&key("q"), Scope::Global), Some(Action::Quit));
        assert_eq!(
            km.action_for(&key("tab"), Scope::Global),
            Some(Action::FocusNext)
        );
        assert_eq!(
            km.action_for(&key("4"), Scope::Global),
            Some(Action::FocusQuery)
        );
        assert_eq!(
            km.action_for(&key("f5"), Scope::QueryPane),
            Some(Action::RunQuery)
        );
        // Query-pane bindings apply only with the Query pane focused.
        assert_eq!(km.action_for(&key("f5"), Scope::Global), None);
        assert_eq!(
            km.action_for(&key("ctrl-c"), Scope::Global),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action_for(&key("ctrl-c"), Scope::QueryPane),
            Some(Action::CancelQuery)
        );
        assert_eq!(
            km.action_for(&key("d"), Scope::ScoresPane),
            Some(Action::NextDevice)
        );
        assert_eq!(km.action_for(&key("d"), Scope::Global), None);
        // The scroll keys scroll the Scores pane's alert history too.
        assert_eq!(
            km.action_for(&key("j"), Scope::ScoresPane),
            Some(Action::ScrollDown)
        );
        assert_eq!(km.action_for(&key("j"), Scope::Global), None);
        // Every bindable action has a default key.
        for (action, _, _) in BINDABLE {
            assert!(!km.keys_for(action).is_empty(), "{action:?}");
        }
    }

    #[test]
    fn overrides_replace_and_steal_keys() {
        let overrides: KeysConfig = toml::from_str("zoom = \"q\"\nquit = [\"x\"]").unwrap();
        let km = Keymap::new(&overrides).unwrap();
        assert_eq!(km.action_for(&key("q"), Scope::Global), Some(Action::Zoom));
        assert_eq!(km.action_for(&key("x"), Scope::Global), Some(Action::Quit));
        assert_eq!(km.action_for(&key("z"), Scope::Global), None);
        assert_eq!(km.describe(&Action::Quit), "x");
    }

    #[test]
    fn one_key_for_two_actions_is_an_error() {
        let overrides: KeysConfig = toml::from_str("zoom = \"k\"\nquit = \"k\"").unwrap();
        let (key_path, msg) = Keymap::new(&overrides).unwrap_err();
        // toml hands the table over in key order: quit is bound first, zoom conflicts.
        assert_eq!(key_path, "keys.zoom");
        assert!(msg.contains("also bound to quit"), "{msg}");
    }
}
