"""What single operations cost the database a mail job talks to.

    .dev/venv/bin/python dev/db-op-costs.py 'mongodb://127.0.0.1:PORT/?directConnection=true'

Creates Muster's indexes in a scratch database with `muster migrate`
(target/release/muster, else target/debug/muster), fills `jobs` and
`invitations` with 3,000 documents each, times the operations one mail
costs, and drops the database. Wall-clock milliseconds per operation, one
client, sequential: on the development database (one Python process) that
is the server's time per operation. Not a test; it prints figures.
"""

import datetime
import os
import subprocess
import sys
import time
import uuid

import pymongo

DOCS = 3_000
REPEAT = 300


def muster_binary():
    for profile in ("release", "debug"):
        path = os.path.join("target", profile, "muster")
        if os.path.exists(path):
            return path
    sys.exit("build muster first (cargo build)")


def timed(label, operation, repeat=REPEAT):
    start = time.perf_counter()
    for i in range(repeat):
        operation(i)
    print(f"| {label} | {(time.perf_counter() - start) / repeat * 1000:.2f} |")


def main():
    uri = sys.argv[1]
    name = f"opcosts_{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
    env.update(MUSTER_MONGODB__URI=uri, MUSTER_MONGODB__DATABASE=name)
    subprocess.run([muster_binary(), "migrate"], env=env, check=True, capture_output=True)
    client = pymongo.MongoClient(uri)
    db = client[name]
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        key = lambda i: f"{i:06d}"
        db.jobs.insert_many([
            {"_id": key(i), "queue": "send_invitation", "status": "pending", "run_at": now,
             "attempts": 0, "max_attempts": 10, "idempotency_key": f"k{i}"}
            for i in range(DOCS)
        ])
        db.invitations.insert_many([
            {"_id": key(i), "org_id": "org", "email": f"user{i}@example.com", "status": "pending",
             "token_hash": f"h{i}", "created_at": now, "expires_at": now,
             "delivery": {"sends": 1, "sent_send": 0, "attempts": 0}}
            for i in range(DOCS)
        ])
        print(f"{DOCS:,} documents per collection, Muster's indexes, ms per operation:\n")
        print("| operation | ms |")
        print("|---|---:|")
        timed("jobs: claim by id (`update_one`)", lambda i: db.jobs.update_one(
            {"_id": key(i), "status": "pending", "attempts": 0},
            {"$set": {"status": "running", "lease_until": now, "worker_id": "w"},
             "$inc": {"attempts": 1}}))
        timed("jobs: settle done (`update_one`)", lambda i: db.jobs.update_one(
            {"_id": key(i), "status": "running", "worker_id": "w"},
            {"$set": {"status": "done", "done_at": now, "expire_at": now, "lease_until": None}}))
        timed("invitations: set the link (`update_one`)", lambda i: db.invitations.update_one(
            {"_id": key(i), "status": "pending", "delivery.sends": 1},
            {"$set": {"token_hash": f"n{i}"}}))
        timed("invitations: read by id (`find_one`)",
              lambda i: db.invitations.find_one({"_id": key(i)}))
        timed("invitations: record the delivery (`update_one`)", lambda i: db.invitations.update_one(
            {"_id": key(i), "delivery.sends": 1},
            {"$set": {"delivery.sent_send": 1}, "$inc": {"delivery.attempts": 1}}))
        timed("invitations: by id with `find_one_and_update`", lambda i: db.invitations.find_one_and_update(
            {"_id": key(i)}, {"$set": {"token_hash": f"m{i}"}}), repeat=30)
        db.jobs.update_many({}, {"$set": {"status": "pending", "attempts": 0}})
        timed("jobs: claim the oldest due (`find_one_and_update`, sorted)", lambda i: db.jobs.find_one_and_update(
            {"queue": "send_invitation", "status": "pending", "run_at": {"$lte": now}},
            {"$set": {"status": "running"}}, sort=[("run_at", 1), ("_id", 1)]), repeat=30)
    finally:
        client.drop_database(name)


if __name__ == "__main__":
    main()
