"""The runbook: one printable document per host, and one for the site.

A host's runbook (content.py, page.py) says who the host was, its disks,
network and backups' chains, and how to bring it back: with amanda-dr in
three steps, or by hand from a plain rescue system, with the commands the
engine itself renders (hand.py).  The site's (site.py) is the site plan
made for paper.  Either is written as HTML with print CSS, or as PDF
through WeasyPrint (output.py).
"""
