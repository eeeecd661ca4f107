\pset pager off
\echo === due (expiry sweep, every 30 s)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, version FROM visits WHERE (status = 'scheduled' AND valid_from <= now()) OR (status IN ('scheduled', 'active') AND valid_until <= now()) LIMIT 1000;
\echo === unsynced (lost-work sweep, every 30 s)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, version FROM visits WHERE (synced_version < version OR email_due_key <> emailed_window) AND updated_at < now() - interval '30 seconds' AND synced_version < version ORDER BY updated_at LIMIT 1000;
\echo === emailsOwed (lost-work sweep)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, email_due_key, emailed_window FROM visits WHERE (synced_version < version OR email_due_key <> emailed_window) AND updated_at < now() - interval '30 seconds' AND synced_version = version AND status IN ('scheduled', 'active') AND email_due_key <> '' ORDER BY updated_at LIMIT 1000;
\echo === reportsOwed (lost-work sweep)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id FROM envoy_reports WHERE state = 'due' AND due_at < now() ORDER BY id LIMIT 1000;
\echo === pruneReports (lost-work sweep)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM envoy_reports WHERE state IN ('failed','waiting','due') AND created_at < now() - interval '7 days';
\echo === activeLinks (drift repair, every 10 min)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT visit_links.* FROM visits CROSS JOIN visit_links WHERE visit_links.visit_id = visits.id AND visits.status IN ('scheduled', 'active') AND visit_links.removed = false;
\echo === peopleRows (person drift repair)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM visit_people WHERE (removed = false OR created = false);
\echo === creatingElsewhere (each link creation)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM visit_links WHERE creating <> '' AND group_id = 1 AND creating = 'x' AND visit_id <> 1;
\echo === guestCreatingElsewhere (each guest invite)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM visit_people WHERE creating <> '' AND creating LIKE 'x%' ESCAPE '\' AND visit_id <> 1;
\echo === memberWindows (each member sync)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT visit_roles.valid_from, visit_roles.valid_until FROM visit_roles JOIN visit_people ON visit_people.visit_id = visit_roles.visit_id JOIN visits ON visits.id = visit_roles.visit_id WHERE visit_roles.removed = false AND visit_roles.person_id = 7 AND visit_roles.group_id = 1 AND visit_people.kind = 'member' AND visit_people.removed = false AND visits.status IN ('scheduled','active');
\echo === syncLag (operations panel)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM (SELECT id FROM visits WHERE (synced_version < version OR email_due_key <> emailed_window) AND updated_at < now() + interval '1 second' AND synced_version < version ORDER BY updated_at LIMIT 1000000) AS lag;
\echo === failed visits (operations panel)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM visits WHERE status = 'failed' AND status IN ('held', 'failed');
\echo === lockctl deleteEventsBefore (lockctl sweep)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM lockctl_events WHERE id IN (SELECT id FROM lockctl_events WHERE created_at < now() - interval '90 days' ORDER BY id LIMIT 1000);
\echo === lockctl deleteExpiredEventSets
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM lockctl_event_sets WHERE expires_at <= now();
\echo === lockctl deleteIdempotencyBefore
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM lockctl_idempotency_keys WHERE key IN (SELECT key FROM lockctl_idempotency_keys WHERE created_at < now() - interval '1 day' LIMIT 1000);
\echo === lockctl deleteLoginsNotMintedBy
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM lockctl_logins WHERE minted_by <> 'x' AND created_at < now() - interval '1 day' AND (last_used_at IS NULL OR last_used_at < now() - interval '1 day');
\echo === CountByStatus (metrics, each scrape, at most every 10 s)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT status, count(*) AS n FROM visits GROUP BY status;
