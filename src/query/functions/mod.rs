//! Trino (Athena) functions that DataFusion lacks or spells differently, so Athena SQL runs as
//! written:
//!
//! | Trino | here |
//! |---|---|
//! | `date_format(ts, '%Y-%m-%d %H:%i')` | our UDF with Trino's MySQL-style specifiers (replaces DataFusion's chrono-style alias of `to_char`) |
//! | `from_iso8601_timestamp('2026-11-30T04:40:00Z')`, `from_iso8601_date('2026-11-30')` | our UDFs (timestamp in UTC) |
//! | `approx_percentile(x, 0.99)` | DataFusion's `approx_percentile_cont` t-digest (same argument order), returning bigint for integer input and double otherwise, as Trino does |
//! | `year`, `quarter`, `month`, `week`, `day`, `day_of_week`, `day_of_year`, `hour`, `minute`, `second`, `millisecond`, `year_of_week` (and `day_of_month`, `dow`, `doy`, `week_of_year`, `yow`) | our UDFs, bigint like Trino |
//! | `date_add(unit, n, ts)`, `date_diff(unit, ts1, ts2)` | our UDFs |
//! | `to_unixtime(ts)` | our UDF returning double seconds, as Trino does (DataFusion's returns bigint) |
//! | `regexp_extract(s, pattern[, group])` | our UDF |
//!
//! Everything else (`date_trunc`, `regexp_like`, `CAST(x AS varchar)`, `current_timestamp -
//! interval '1' hour`, `approx_distinct`, `count`, `avg`…) is DataFusion's own.

mod approx_percentile;
mod args;
mod date_arith;
mod date_format;
mod date_part;
mod iso8601;
mod regexp;
mod to_unixtime;
mod types;

use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

pub use date_format::trino_date_format;
pub use iso8601::parse_iso8601_ms;
pub use types::athena_type;

use approx_percentile::ApproxPercentile;
use date_arith::{DateAdd, DateDiff};
use date_format::DateFormat;
use date_part::{DatePart, DatePartFn};
use iso8601::FromIso8601;
use regexp::RegexpExtract;
use to_unixtime::ToUnixtime;

/// Registers every function of this module on `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(DateFormat::new()));
    ctx.register_udf(ScalarUDF::from(FromIso8601::new(false)));
    ctx.register_udf(ScalarUDF::from(FromIso8601::new(true)));
    for part in DatePart::ALL {
        ctx.register_udf(ScalarUDF::from(DatePartFn::new(part)));
    }
    ctx.register_udf(ScalarUDF::from(DateAdd::new()));
    ctx.register_udf(ScalarUDF::from(DateDiff::new()));
    ctx.register_udf(ScalarUDF::from(ToUnixtime::new()));
    ctx.register_udf(ScalarUDF::from(RegexpExtract::new()));
    ctx.register_udaf(AggregateUDF::from(ApproxPercentile::new()));
}
