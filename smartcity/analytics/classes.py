"""The default object classes of the rule types: what a rule watches when its `classes` is empty.

One tuple per kind of road user, shared by every rule type for which the same reasoning holds,
so that two rule types differ only where there is a reason (README, "Rules", has the table):

- VEHICLES, for the rules about vehicles (dwell, dumping, wrong_way, red_light): every wheeled
  road user, bicycles included. A cyclist going the wrong way or through a red light, a cargo
  bike left in a bus lane or unloading rubbish, is what these rules are for as much as a car;
  an operator who wants motor vehicles only lists them in the rule's `classes`.
- ROAD_USERS, for the rules that measure traffic (line_count, zone_passage): VEHICLES plus
  pedestrians. A count is for planning, and walkers crossing a line or a square are part of the
  traffic a planner counts; the count is per class, so they never mix with vehicles.
- PEOPLE, for crowd gauges (occupancy): a crowd is people.
- BAGS, for abandoned objects: what a person carries and may leave behind.
- DISCARDED, for the rules about rubbish (the objects of dumping, overflow): BAGS plus what a
  detector trained on street rubbish names (bin bags, boxes, furniture).
"""

from __future__ import annotations

VEHICLES = ("car", "truck", "bus", "motorcycle", "bicycle")
ROAD_USERS = ("person", *VEHICLES)
PEOPLE = ("person",)
BAGS = ("backpack", "handbag", "suitcase")
DISCARDED = ("box", "bag", "suitcase", "backpack", "handbag", "bin_bag", "furniture")
