// Package jobs runs latchkey's background work on asynq: typed tasks with
// deterministic ids (visit sync, email), the worker that handles them, and a
// cron scheduler (robfig/cron) whose entries only enqueue sweeps. Only one
// scheduler replica acts at a time, through a lease in Redis.
//
// asynq and cron stay inside this package; callers use Client, Worker and
// Scheduler. It imports connector, mappings and the root package.
package jobs
