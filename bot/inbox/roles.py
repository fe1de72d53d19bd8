"""The inbox users' roles: an owner also sees dead letters and manages saved replies; an agent does not.

Standard library only: `plusone user add` offers them in its help without loading the inbox.
"""

from __future__ import annotations

ROLES = ("owner", "agent")
