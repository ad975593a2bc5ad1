-- name: location_ancestors
-- The ancestors of each location in $1 (not itself), outermost first.
SELECT lc.location_id, a.id, a.slug, a.name, a.kind, a.country, a.latitude, a.longitude, a.parent_id
  FROM location_closure lc JOIN locations a ON a.id = lc.ancestor_id
 WHERE lc.location_id = ANY($1::bigint[]) AND lc.depth > 0
 ORDER BY lc.location_id, lc.depth DESC
