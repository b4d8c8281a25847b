"""Traffic-signal control from the cameras: the junction model, the safety layer every command
passes, the controllers (Webster fixed-time, actuated, max-pressure), the adapters (NTCIP 1202,
HTTP, MQTT, SUMO TraCI) and the extension (`type: signals`) that runs them in the server.

The pure parts (junction, safety, controllers, measures, runtime) do no I/O.
"""

from .config import SignalJunction, SignalsConfig
from .controllers import Actuated, ControlView, FixedTime, LaneMeasure, MaxPressure, webster
from .extension import SignalsExtension
from .junction import JunctionConfig
from .safety import Override, SafetyLayer, SafetyMonitor, SignalFrame

__all__ = [
    "Actuated",
    "ControlView",
    "FixedTime",
    "JunctionConfig",
    "LaneMeasure",
    "MaxPressure",
    "Override",
    "SafetyLayer",
    "SafetyMonitor",
    "SignalFrame",
    "SignalJunction",
    "SignalsConfig",
    "SignalsExtension",
    "webster",
]
