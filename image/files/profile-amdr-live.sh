# amanda-dr live: on tty1 and ttyS0 the login shell attaches to the recovery's
# tmux session (both consoles see the same screens); leaving it gives a shell
case "$(tty)" in
/dev/tty1|/dev/ttyS0)
    if [ -z "$TMUX" ] && [ "$(id -u)" = 0 ] && [ -z "$AMDR_LIVE_NO_UI" ]; then
        amdr-live
    fi
    ;;
esac
