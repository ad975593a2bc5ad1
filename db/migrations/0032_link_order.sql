-- Links in the change feed's entry documents are ordered by name in code-point order
-- (COLLATE "C"), as REST and GraphQL list them (db/refs.py sorts them in Python, where
-- strings compare by code point): the same order whatever the database's collation.
-- Otherwise sitrep_entry_docs is 0031's.
CREATE OR REPLACE FUNCTION sitrep_entry_docs(ids bigint[]) RETURNS TABLE (id bigint, doc jsonb) LANGUAGE sql STABLE AS $$
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
                 ORDER BY ea.role DESC, a.name COLLATE "C", a.id) AS docs
        FROM entry_actors ea JOIN actors a ON a.id = ea.actor_id
       WHERE ea.entry_id = ANY(ids)
       GROUP BY ea.entry_id
  ) ea ON ea.entry_id = e.id
  LEFT JOIN (
      SELECT el.entry_id,
             jsonb_agg(jsonb_build_object('id', l.id, 'slug', l.slug, 'name', l.name, 'kind', l.kind,
                                          'country', l.country, 'latitude', l.latitude,
                                          'longitude', l.longitude, 'parent_id', l.parent_id)
                       ORDER BY l.name COLLATE "C", l.id) AS docs
        FROM entry_locations el JOIN locations l ON l.id = el.location_id
       WHERE el.entry_id = ANY(ids)
       GROUP BY el.entry_id
  ) el ON el.entry_id = e.id
  LEFT JOIN (
      SELECT es.entry_id,
             jsonb_agg(jsonb_build_object('id', s.id, 'slug', s.slug, 'name', s.name, 'kind', s.kind)
                       ORDER BY s.name COLLATE "C", s.id) AS docs
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
