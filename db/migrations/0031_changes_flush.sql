-- The change feed's flush at COMMIT, set-based (0030_changes.sql describes the feed; its
-- semantics are unchanged here: the same rows, seq, coalescing, tombstones and NOTIFY).
--
-- Why: 0030 built each change's data with one call of sitrep_change_doc per pending row,
-- evaluated twice per row (in the WHERE and in the SELECT list, as the planner inlined the
-- `docs` CTE), each call running the entry document's four correlated subqueries through a
-- nested SQL function that was planned again per call. And the flush trigger fires once per
-- pending row: each later firing checked for "any pending row of this transaction" through an
-- index whose entries for the rows the first firing had just deleted it had to step over, so
-- that check was quadratic in the batch. A 500-entry batch of `sitrep relink` spent 1.7 to 4.4 s
-- at COMMIT, holding the feed's lock, so every other writer waited too.
--
-- Now the flush builds every entry document of the transaction in one statement
-- (sitrep_entry_docs: one grouped join per link table), computes each document once, and a
-- later firing looks up only its own row by key. bench/feed_flush.py (20,000 generated
-- entries, transactions rewriting the links of 500): flush median 1.66 s before, 62 ms after.

-- Entries as the feed and the streams carry them, many at once: exactly the REST entry
-- (db/rows.py Entry), links in the order REST lists them. Ids that are not entries are left out.
CREATE FUNCTION sitrep_entry_docs(ids bigint[]) RETURNS TABLE (id bigint, doc jsonb) LANGUAGE sql STABLE AS $$
SELECT e.id, jsonb_build_object(
    'id', e.id,
    'blog', jsonb_build_object('id', e.blog_id, 'slug', b.slug, 'title', b.title),
    'published_at', e.published_at,
    'updated_at', e.updated_at,
    'created_at', e.created_at,
    'kind', e.kind,
    'headline', e.headline,
    'body', to_jsonb(e.body),
    'actors', COALESCE(ea.docs, '[]'::jsonb),
    'locations', COALESCE(el.docs, '[]'::jsonb),
    'sources', COALESCE(es.docs, '[]'::jsonb),
    'media', COALESCE(m.docs, '[]'::jsonb)
)
  FROM entries e
  LEFT JOIN blogs b ON b.id = e.blog_id
  LEFT JOIN (
      SELECT ea.entry_id,
             jsonb_agg(jsonb_build_object(
                 'role', ea.role,
                 'actor', jsonb_build_object('id', a.id, 'slug', a.slug, 'name', a.name, 'kind', a.kind,
                                             'country', a.country))
                 ORDER BY ea.role DESC, a.name, a.id) AS docs
        FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id
       WHERE ea.entry_id = ANY(ids)
       GROUP BY ea.entry_id
  ) ea ON ea.entry_id = e.id
  LEFT JOIN (
      SELECT el.entry_id,
             jsonb_agg(jsonb_build_object('id', l.id, 'slug', l.slug, 'name', l.name, 'kind', l.kind,
                                          'country', l.country, 'latitude', l.latitude,
                                          'longitude', l.longitude, 'parent_id', l.parent_id)
                       ORDER BY l.name, l.id) AS docs
        FROM entry_locations el JOIN locations l ON l.id = el.location_id
       WHERE el.entry_id = ANY(ids)
       GROUP BY el.entry_id
  ) el ON el.entry_id = e.id
  LEFT JOIN (
      SELECT es.entry_id,
             jsonb_agg(jsonb_build_object('id', s.id, 'slug', s.slug, 'name', s.name, 'kind', s.kind)
                       ORDER BY s.name, s.id) AS docs
        FROM entry_sources es JOIN sources s ON s.id = es.source_id
       WHERE es.entry_id = ANY(ids)
       GROUP BY es.entry_id
  ) es ON es.entry_id = e.id
  LEFT JOIN (
      SELECT m.entry_id,
             jsonb_agg(jsonb_build_object(
                 'position', m.position, 'kind', m.kind, 'url', m.url, 'caption', m.caption,
                 'credit', m.credit, 'alt_text', m.alt_text,
                 'embed', CASE WHEN m.kind = 'embed' THEN jsonb_build_object(
                              'author', m.embed_author, 'handle', m.embed_handle, 'date', m.embed_date,
                              'text', m.embed_text, 'url', m.embed_url) END)
                 ORDER BY m.position) AS docs
        FROM media m
       WHERE m.entry_id = ANY(ids)
       GROUP BY m.entry_id
  ) m ON m.entry_id = e.id
 WHERE e.id = ANY(ids)
$$;

-- One entry (a delete's tombstone, writes.sql): the same document, defined once above.
CREATE OR REPLACE FUNCTION sitrep_entry_doc(bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
SELECT doc FROM sitrep_entry_docs(ARRAY[$1])
$$;

-- At COMMIT: number this transaction's changes in commit order (see 0030_changes.sql).
CREATE OR REPLACE FUNCTION sitrep_flush_changes() RETURNS trigger LANGUAGE plpgsql SET TimeZone TO 'UTC' AS $$
DECLARE
    last_seq bigint;
BEGIN
    -- fires once per pending row; the first firing does the work for all of them. The later
    -- ones look up their own row by key: gone means flushed (0030 looked for any row of the
    -- transaction, and had to step over every row the first firing had deleted, each time)
    IF NOT EXISTS (SELECT 1 FROM change_pending
                    WHERE xid = NEW.xid AND entity = NEW.entity AND entity_id = NEW.entity_id) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(8317980662474424368);  -- 0x7369747265700030: 'sitrep' changes
    WITH done AS MATERIALIZED (
        DELETE FROM change_pending WHERE xid = pg_current_xact_id()
        RETURNING entity, entity_id, op, noted, last_state
    ), entry_docs AS MATERIALIZED (
        SELECT ed.id, ed.doc FROM sitrep_entry_docs(ARRAY(SELECT entity_id FROM done WHERE entity = 'entry')) ed
    ), docs AS MATERIALIZED (
        -- the other entities are few per transaction: a lookup by id each, only in its branch
        SELECT d.entity, d.entity_id, d.op, d.noted, d.last_state,
               CASE d.entity
                   WHEN 'entry' THEN ed.doc
                   WHEN 'blog' THEN (SELECT to_jsonb(b) FROM blogs b WHERE b.id = d.entity_id)
                   WHEN 'actor' THEN (SELECT to_jsonb(a) FROM actors a WHERE a.id = d.entity_id)
                   WHEN 'location' THEN (SELECT to_jsonb(l) FROM locations l WHERE l.id = d.entity_id)
                   WHEN 'source' THEN (SELECT to_jsonb(s) FROM sources s WHERE s.id = d.entity_id)
               END AS doc
          FROM done d
          LEFT JOIN entry_docs ed ON d.entity = 'entry' AND ed.id = d.entity_id
    ), written AS (
        INSERT INTO changes (seq, entity, entity_id, op, at, data)
        SELECT nextval('changes_seq'), entity, entity_id,
               CASE WHEN doc IS NULL THEN 'delete' WHEN op IN ('create', 'gone') THEN 'create' ELSE 'update' END,
               clock_timestamp(), COALESCE(doc, last_state)
          FROM docs
         WHERE NOT (doc IS NULL AND op IN ('create', 'gone'))  -- born and gone in one transaction
         ORDER BY noted
        RETURNING seq
    )
    SELECT max(seq) INTO last_seq FROM written;
    IF last_seq IS NOT NULL THEN
        PERFORM pg_notify('sitrep_changes', last_seq::text);
    END IF;
    RETURN NULL;
END $$;
