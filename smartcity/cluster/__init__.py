"""Several servers sharing PostgreSQL and the Ray cluster: leader election (`election`) and the
event feed that gives every server every event (`feed`). Imports only `core` and asyncpg."""

from smartcity.cluster.election import LeaderElection, Term
from smartcity.cluster.feed import FEED_TYPES, ClusterFeed

__all__ = ["FEED_TYPES", "ClusterFeed", "LeaderElection", "Term"]
