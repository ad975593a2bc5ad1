-- name: location_ancestors
-- The ancestors of each location in $1 (not itself), outermost first.
SELECT lc.location_id, a.id, a.slug, a.name, a.kind, a.country, a.latitude, a.longitude, a.parent_id
  FROM location_closure lc JOIN locations a ON a.id = lc.ancestor_id
 WHERE lc.location_id = ANY($1::bigint[]) AND lc.depth > 0
 ORDER BY lc.location_id, lc.depth DESC

-- name: rebuild_entry_rollups
-- Recount blog_entry_counts and entry_hour_counts from entries, link_day_counts from the link
-- tables and the entry bitmaps (after a load that bypassed triggers); several statements, so run it without parameters.
DELETE FROM blog_entry_counts;
INSERT INTO blog_entry_counts (blog_id, entry_count) SELECT blog_id, count(*) FROM entries GROUP BY blog_id;
DELETE FROM entry_hour_counts;
INSERT INTO entry_hour_counts (hour, entry_count)
SELECT date_trunc('hour', published_at, 'UTC'), count(*) FROM entries GROUP BY 1;
DELETE FROM link_day_counts;
INSERT INTO link_day_counts (link, target_id, day, entry_count)
SELECT 'a', actor_id, (published_at AT TIME ZONE 'UTC')::date, count(*) FROM entry_actors GROUP BY 2, 3
UNION ALL
SELECT 'l', location_id, (published_at AT TIME ZONE 'UTC')::date, count(*) FROM entry_locations GROUP BY 2, 3
UNION ALL
SELECT 's', source_id, (published_at AT TIME ZONE 'UTC')::date, count(*) FROM entry_sources GROUP BY 2, 3;
SELECT sitrep_rebuild_entry_bits();
