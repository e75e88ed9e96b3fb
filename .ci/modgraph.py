#!/usr/bin/env python3
"""Prints the import graph of the top-level modules of a Rust crate (`crate::X` references
outside test modules) and exits 1 if it has a cycle. Usage: modgraph.py [SRC_DIR]"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
def top(path):
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    name = parts[0][:-3] if parts[0].endswith('.rs') else parts[0]
    return name
edges = {}
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f)
        m = top(p)
        if m in ('main', 'lib'): continue
        text = open(p).read()
        # drop test modules (rough: from '#[cfg(test)]' to end)
        i = text.find('#[cfg(test)]')
        if i >= 0: text = text[:i]
        text = re.sub(r'//.*', '', text)
        for t in re.findall(r'crate::([a-z_]+)', text):
            if t != m: edges.setdefault(m, set()).add(t)
        # use super:: in a submodule stays in the module
nodes = sorted(set(edges) | {t for v in edges.values() for t in v})
for n in nodes: print(f"{n:12} -> {', '.join(sorted(edges.get(n, [])))}")
# Tarjan SCC
index = {}; low = {}; stack = []; on = set(); sccs = []; c = [0]
def sc(v):
    index[v] = low[v] = c[0]; c[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, []):
        if w not in index: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for n in nodes:
    if n not in index: sc(n)
print("cycles:", sccs if sccs else "none")
sys.exit(1 if sccs else 0)
