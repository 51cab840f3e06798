"""The HTTP service: a JSON API under /api/v1 and a server-rendered dashboard (`volfefe serve`).

Built by `volfefe.web.app.create_app(settings, database_url, classifier, ready)`; see that
module for the map.
"""
