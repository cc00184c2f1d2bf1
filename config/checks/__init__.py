"""The cross-checks: each looks at the sections that validated (`Parsed`) and appends its problems.

`CROSS_CHECKS` run after every section validated on its own; `SECRET_SOURCE_CHECKS` after the
supplied secrets were read. Their order is the order problems are reported in.
"""

from __future__ import annotations

from .access import check_access_section
from .data import check_backups, check_data_store_sources, check_data_stores, check_redis_room
from .environment import check_environment
from .fleet import check_fleet, check_fleet_access
from .gateway import check_gateway, check_management_reach, check_tls_source
from .images import check_images
from .monitoring import check_monitoring
from .network import check_port_clashes
from .routing import check_routing
from .ownership import check_ownership
from .platform import check_kubernetes_tls_source, check_platform
from .secrets import check_supplied_secret
from .vault import check_vault

CROSS_CHECKS = (
    check_platform, check_gateway, check_vault, check_monitoring, check_port_clashes, check_backups, check_redis_room,
    check_data_stores,
    check_environment, check_ownership, check_fleet, check_routing, check_access_section, check_management_reach,
)
SECRET_SOURCE_CHECKS = (check_fleet_access, check_tls_source, check_kubernetes_tls_source, check_data_store_sources)

__all__ = ["CROSS_CHECKS", "SECRET_SOURCE_CHECKS", "check_images", "check_supplied_secret"]
