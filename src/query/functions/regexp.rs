//! `regexp_extract(s, pattern[, group])`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{string_at, strings};
use super::types::{arity, coerce_integer, coerce_string};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct RegexpExtract {
    signature: Signature,
}

impl RegexpExtract {
    pub(super) fn new() -> Self {
        RegexpExtract {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[2, 3])?;
        let mut out = vec![
            coerce_string(self.name(), &args[0])?,
            coerce_string(self.name(), &args[1])?,
        ];
        if let Some(g) = args.get(2) {
            out.push(coerce_integer(self.name(), g)?);
        }
        Ok(out)
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let input = strings(&args.args[0], rows)?;
        let patterns = strings(&args.args[1], rows)?;
        let groups = match args.args.get(2) {
            Some(g) => Some(cast(&g.to_array(rows)?, &DataType::Int64)?),
            None => None,
        };
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        let mut compiled: Option<(String, regex::Regex)> = None;
        for i in 0..rows {
            let (Some(s), Some(p)) = (string_at(&input, i), string_at(&patterns, i)) else {
                out.append_null();
                continue;
            };
            let group = match &groups {
                None => 0,
                Some(g) if g.is_null(i) => {
                    out.append_null();
                    continue;
                }
                Some(g) => g
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .value(i),
            };
            if compiled.as_ref().is_none_or(|(q, _)| q != p) {
                let re = regex::Regex::new(p).map_err(|e| {
                    DataFusionError::Execution(format!(
                        "regexp_extract: invalid pattern {p:?}: {}",
                        e.to_string().lines().last().unwrap_or_default()
                    ))
                })?;
                compiled = Some((p.to_string(), re));
            }
            let Some((_, re)) = &compiled else {
                out.append_null();
                continue;
            };
            let Ok(group) = usize::try_from(group) else {
                return exec_err!("regexp_extract: group must not be negative");
            };
            if group >= re.captures_len() {
                return exec_err!(
                    "regexp_extract: pattern has {} groups, asked for group {group}",
                    re.captures_len() - 1
                );
            }
            match re.captures(s).and_then(|c| c.get(group)) {
                Some(m) => out.append_value(m.as_str()),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
