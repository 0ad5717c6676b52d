"""Amanda's quoting of strings in trace logs and command output.

Amanda writes a token in double quotes when it holds a space, a quote, a
backslash or nothing, with C-style escapes inside (common-src/util.c
quote_string).  Disk names like "/srv/my data" depend on this.
"""

_ESC = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "\\": "\\", '"': '"'}


def split_quoted(line: str) -> list[str]:
    out, i, n = [], 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        if line[i] == '"':
            i += 1
            buf = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    nxt = line[i + 1]
                    if nxt in "01234567":  # octal escape \ooo
                        j = i + 1
                        while j < n and j < i + 4 and line[j] in "01234567":
                            j += 1
                        buf.append(chr(int(line[i + 1:j], 8)))
                        i = j
                        continue
                    buf.append(_ESC.get(nxt, nxt))
                    i += 2
                else:
                    buf.append(line[i])
                    i += 1
            out.append("".join(buf))
            i += 1
        else:
            j = i
            while j < n and line[j] not in " \t":
                j += 1
            out.append(line[i:j])
            i = j
    return out


def sanitise(disk: str) -> str:
    """The form Amanda gives a disk name in a vtape file name: '/' becomes '_'."""
    return disk.replace("/", "_")
