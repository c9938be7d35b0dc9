"""Who a person is in a show: the roles tokens carry and every domain checks."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    HOST = "host"
    MODERATOR = "moderator"
    VIEWER = "viewer"
