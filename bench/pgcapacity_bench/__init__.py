"""`make bench` / `pgcapacity bench`: real concurrent clients against a real server.

One run measures pgcapacity's workloads in every lock mode *and* the baselines (a naive
single-row claim, a raw random-row UPDATE, SELECT 1) on the same server, so every figure
can be read as a ratio that does not depend on the machine. See docs/benchmarks.md.
"""
