-- Queries of db/ingest/curate.py: an editor's review of the actors the linker discovered.

-- name: curate_discovered
-- Discovered actors (all, or those of one status), newest first, with how many entries link them.
SELECT a.slug, a.name, a.kind, a.country, a.aliases, d.status, d.discovered_by, d.discovered_at,
       (SELECT count(*) FROM entry_actors ea WHERE ea.actor_id = a.id) AS entries
  FROM actor_discoveries d JOIN actors a ON a.id = d.actor_id
 WHERE ($1::text IS NULL OR d.status = $1)
 ORDER BY d.discovered_at DESC, a.id DESC
 LIMIT $2

-- name: curate_actor
-- One actor by id or slug, locked for the change, with its discovery if it has one.
SELECT a.id, a.slug, a.name, a.aliases, d.status
  FROM actors a LEFT JOIN actor_discoveries d ON d.actor_id = a.id
 WHERE a.id = $1::bigint OR a.slug = $2::text
   FOR UPDATE OF a

-- name: curate_confirm
-- Mark a discovered actor confirmed by an editor.
UPDATE actor_discoveries SET status = 'confirmed' WHERE actor_id = $1

-- name: curate_slug_taken
-- Whether an actor has this slug.
SELECT EXISTS (SELECT 1 FROM actors WHERE slug = $1)

-- name: curate_rename
-- Give an actor a new name (and slug), keeping the old name among its aliases.
UPDATE actors
   SET name = $2, slug = $3,
       aliases = ARRAY(SELECT DISTINCT x FROM unnest(aliases || name) AS x WHERE x <> $2 ORDER BY x)
 WHERE id = $1

-- name: curate_move_links
-- Move actor $1's entry links to actor $2; an entry linked to both keeps one link, a speaker if
-- either was. Returns the entries whose links changed.
WITH moved AS (
    DELETE FROM entry_actors WHERE actor_id = $1 RETURNING entry_id, role, published_at
), kept AS (
    INSERT INTO entry_actors AS ea (entry_id, actor_id, role, published_at)
    SELECT entry_id, $2, role, published_at FROM moved ORDER BY entry_id
    ON CONFLICT (entry_id, actor_id) DO UPDATE SET role = 'speaker'
     WHERE EXCLUDED.role = 'speaker' AND ea.role <> 'speaker'
)
SELECT entry_id FROM moved

-- name: curate_absorb
-- Actor $2 takes actor $1's name and aliases as its own aliases; actor $1 goes.
WITH gone AS (DELETE FROM actors WHERE id = $1 RETURNING name, aliases)
UPDATE actors a
   SET aliases = ARRAY(SELECT DISTINCT x FROM unnest(a.aliases || gone.name || gone.aliases) AS x
                        WHERE x <> a.name ORDER BY x)
  FROM gone
 WHERE a.id = $2

-- name: curate_touch_entries
-- Entries whose links an editor changed are updated.
UPDATE entries SET updated_at = now() WHERE id = ANY($1::bigint[])
