from nanoweb.providers.simulator.protocols import crun

ALL = (crun,)
