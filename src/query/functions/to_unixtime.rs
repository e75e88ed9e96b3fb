//! `to_unixtime(ts)`: seconds since the epoch as a double, as Trino gives them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, Float64Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::Timestamps;
use super::types::{arity, coerce_timestamp};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ToUnixtime {
    signature: Signature,
}

impl ToUnixtime {
    pub(super) fn new() -> Self {
        ToUnixtime {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToUnixtime {
    fn name(&self) -> &str {
        "to_unixtime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[1])?;
        Ok(vec![coerce_timestamp(self.name(), &args[0])?])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let ts = Timestamps::new(self.name(), &args.args[0], rows)?;
        let mut out = Float64Builder::with_capacity(rows);
        for i in 0..rows {
            out.append_option((!ts.values.is_null(i)).then(|| ts.values.value(i) as f64 / 1000.0));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
