//! `approx_percentile(x, p)`: DataFusion's t-digest with Trino's result type.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::functions_aggregate::approx_percentile_cont::{
    ApproxPercentileAccumulator, approx_percentile_cont_udaf,
};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;

use super::types::{arity, athena_type};

/// Trino's `approx_percentile(x, p)`: DataFusion's t-digest (`approx_percentile_cont`), with
/// Trino's result type: bigint for integer input (the estimate rounded), double otherwise.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ApproxPercentile {
    signature: Signature,
}

impl ApproxPercentile {
    pub(super) fn new() -> Self {
        ApproxPercentile {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The inner t-digest, fed floats; its result rounded for integer input.
#[derive(Debug)]
struct ApproxPercentileAcc {
    inner: ApproxPercentileAccumulator,
    integer: bool,
}

impl Accumulator for ApproxPercentileAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let floats = cast(&values[0], &DataType::Float64)?;
        self.inner.update_batch(&[floats])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let v = self.inner.evaluate()?;
        if !self.integer {
            return Ok(v);
        }
        Ok(match v {
            ScalarValue::Float64(Some(x)) => ScalarValue::Int64(Some(x.round() as i64)),
            _ => ScalarValue::Int64(None),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) - std::mem::size_of_val(&self.inner) + self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }
}

impl AggregateUDFImpl for ApproxPercentile {
    fn name(&self) -> &str {
        "approx_percentile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() == 3 {
            return plan_err!(
                "approx_percentile with weights (x, w, p) is not supported: use approx_percentile(x, p)"
            );
        }
        arity(self.name(), args, &[2])?;
        let x = match &args[0] {
            t if t.is_integer() => DataType::Int64,
            t if t.is_numeric() => DataType::Float64,
            DataType::Null => DataType::Float64,
            other => {
                return plan_err!(
                    "approx_percentile expects a number, got {}",
                    athena_type(other)
                );
            }
        };
        if !(args[1].is_numeric() || args[1] == DataType::Null) {
            return plan_err!(
                "approx_percentile expects a percentage between 0 and 1, got {} (an array of percentages is not supported)",
                athena_type(&args[1])
            );
        }
        Ok(vec![x, DataType::Float64])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(if args[0].is_integer() {
            DataType::Int64
        } else {
            DataType::Float64
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let percentile = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value() {
                ScalarValue::Float64(Some(p)) => Some(*p),
                _ => None,
            });
        let Some(p) = percentile.filter(|p| (0.0..=1.0).contains(p)) else {
            return plan_err!(
                "approx_percentile: the percentage must be a constant between 0 and 1"
            );
        };
        Ok(Box::new(ApproxPercentileAcc {
            inner: ApproxPercentileAccumulator::new(p, DataType::Float64),
            integer: args.return_type().is_integer(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let inner = approx_percentile_cont_udaf();
        let float_field: FieldRef = Arc::new(Field::new(args.name, DataType::Float64, true));
        let input_fields: Vec<FieldRef> = args
            .input_fields
            .iter()
            .map(|_| float_field.clone())
            .collect();
        inner.inner().state_fields(StateFieldsArgs {
            name: args.name,
            input_fields: &input_fields,
            return_field: float_field.clone(),
            ordering_fields: args.ordering_fields,
            is_distinct: args.is_distinct,
        })
    }
}
