"""The lost-server path: an Amanda server rebuilt from what survived it.

When the Amanda server itself is gone, nothing on a new machine knows the
volumes.  This package writes a working Amanda configuration on the live
system, from a bundle's copy of the server's database or from a catalog
rebuilt from reports or a media scan, so that the real `amrecover` and
`amfetchdump` restore from it; the server's own DLEs are the first ones
restored that way.

  conf.py       amanda.conf: the old one with its paths rewritten, or a new one
  synth.py      trace logs, tapelist and disklist written from Dump records
  indexfmt.py   Amanda's index files: names and the listing they hold
  rebuild.py    the plan (files, commands) and applying it as root and backup
  amrecover.py  the interactive driver of the real amrecover
  fetchdump.py  amfetchdump piped into tar or restore, image by image
  cli.py        `amdr-recover rebuild-server` and `restore-from-server`
"""
