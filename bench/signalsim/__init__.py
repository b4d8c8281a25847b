"""signalsim: traffic-signal control in SUMO with virtual cameras in the loop, for bench/signals.py.

tls.py turns a SUMO traffic light into our junction model; cameras.py films the approaches with
bench/roadsim's camera and noise models and runs smartcity's tracker and rules on the detections;
run.py drives one simulation with SUMO's own programmes or with the signals extension's runtime.
"""
