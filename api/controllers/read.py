"""Every REST read route (/v1/blogs, entries, actors, locations, sources, timeline), for create_app.

Plain handlers rather than Controllers: Litestar (2.25) cannot merge two Controllers' handlers
on one path, and the write routes share these paths.
"""

from __future__ import annotations

from api.controllers import actors, blogs, entries, locations, sources, timeline

route_handlers = [
    *blogs.route_handlers,
    *entries.route_handlers,
    *actors.route_handlers,
    *locations.route_handlers,
    *sources.route_handlers,
    *timeline.route_handlers,
]
