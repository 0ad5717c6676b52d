"""The site recovery plan: after a fire or a flood, every host at once.

schedule.py plans (pure): hosts in order, volumes on drives, times.
check.py holds the rules a plan must keep, checked by the tests, the bench
and the CLI.  collect.py turns a directory of bundles into the planner's
input (the server's catalog, each host's priority and role).  show.py
renders a plan for people (table, timeline, runbook) and as JSON.
"""
