//! What one MongoDB round trip costs the calling process, with nothing of
//! Muster around it: `find_one` by `_id` through the same driver, client
//! options and runtime as the server, 4 at a time, CPU from /proc.
//!
//!     cargo bench --bench driver_floor -- 'mongodb://127.0.0.1:PORT/?directConnection=true'
//!
//! `dev/bench scim` measures the same floor in its own run and reports
//! every workload in units of it: if one round trip alone costs what
//! Muster spends per request, the time is in the driver and the kernel,
//! not in Muster.

mod common;

const OPERATIONS: usize = 20_000;
const CONCURRENCY: usize = 4;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::args()
        .skip(1)
        .find(|a| a.starts_with("mongodb"))
        .ok_or("usage: driver_floor MONGODB_URI")?;
    let floor = common::driver_floor_ms(&uri, OPERATIONS, CONCURRENCY).await?;
    println!("find_one by _id, {CONCURRENCY} at a time: {floor:.3} ms CPU per op in this process");
    Ok(())
}
