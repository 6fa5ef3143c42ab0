"""The whisk.system catalog: public packages (utils, samples, alarms) a controller installs on start."""
