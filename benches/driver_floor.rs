//! What one MongoDB round trip costs the calling process, with nothing of
//! Muster around it: `find_one` by `_id` through the same driver, client
//! options and runtime as the server, 4 at a time, CPU from /proc.
//!
//!     cargo bench --bench driver_floor -- 'mongodb://127.0.0.1:PORT/?directConnection=true'
//!
//! It reads the figure `dev/bench scim` calls "floor: token check only"
//! against: if one round trip alone costs what Muster spends per request,
//! the time is in the driver and the kernel, not in Muster.

use std::time::Instant;

use bson::{Document, doc};
use mongodb::Client;
use mongodb::options::{ClientOptions, WriteConcern};

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 4;

/// User + system time of this process, from /proc (clock ticks of 10 ms:
/// fine over thousands of operations).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::args()
        .skip(1)
        .find(|a| a.starts_with("mongodb"))
        .ok_or("usage: driver_floor MONGODB_URI")?;
    let mut options = ClientOptions::parse(&uri).await?;
    options.write_concern = Some(WriteConcern::majority());
    let client = Client::with_options(options)?;
    let database = client.database(&format!("driver_floor_{}", std::process::id()));
    let collection = database.collection::<Document>("docs");
    collection.insert_one(doc! { "_id": "x", "v": 1 }).await?;
    for _ in 0..500 {
        collection.find_one(doc! { "_id": "x" }).await?;
    }
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let collection = collection.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..REQUESTS / CONCURRENCY {
                collection.find_one(doc! { "_id": "x" }).await?;
            }
            Ok::<_, mongodb::error::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
    println!(
        "find_one by _id, {CONCURRENCY} at a time: {:.0} ops/s, {:.3} ms CPU per op in this process",
        REQUESTS as f64 / wall,
        cpu * 1000.0 / REQUESTS as f64
    );
    database.drop().await?;
    Ok(())
}
