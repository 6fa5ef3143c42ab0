"""Alarms built into the controller: the feeds /whisk.system/alarms/alarm, /once and /interval, and their scheduler."""
