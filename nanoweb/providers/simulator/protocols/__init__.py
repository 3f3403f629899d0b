from nanoweb.providers.simulator.protocols import apiframe, crun, defapi, gemini, nanophoto

ALL = (crun, nanophoto, apiframe, defapi, gemini)
