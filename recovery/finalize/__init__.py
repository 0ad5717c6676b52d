"""Finalize: make the restored system boot on the disks and hardware it is on now.

The seed's recovery guide ends with this work done by hand (chroot, empty
/proc, check fstab and the boot loader's devices, write a boot sector); here
it is a plan of actions like the disk plan's (render() without running,
apply(runner)), made from facts read in one place (facts.py), so `plan`
shows it before anything is wiped and a re-run continues from its journal.

    facts.py    what the restored target, the live machine and the bundle say
    refs.py     every device reference in the target's files, resolved or rewritten
    nics.py     the original NICs matched to the ones here; .link pins, MAC rewrites
    actions.py  chroot binds, scrubbing, file rewrites, initramfs, GRUB, EFI, caps
    plan.py     facts -> the ordered actions, or a refusal naming file and line
    run.py      apply with a journal, then the report in the target and beside it
"""
