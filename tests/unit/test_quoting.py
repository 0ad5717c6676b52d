"""Amanda's token quoting (common-src/util.c quote_string / unquote_string)."""


from recovery.media.quoting import sanitise, split_quoted


def test_plain_tokens():
    assert split_quoted("PART taper PROBE-01 1 localhost /dev/loop0p2") == [
        "PART", "taper", "PROBE-01", "1", "localhost", "/dev/loop0p2"]


def test_runs_of_blanks_and_tabs_separate_like_one():
    # amadmin find pads its columns with spaces
    assert split_quoted("  a   b\t\tc  ") == ["a", "b", "c"]


def test_empty_line():
    assert split_quoted("") == []
    assert split_quoted("   ") == []


def test_quoted_string_with_spaces():
    assert split_quoted('localhost "/srv/my data" 20261122012318') == [
        "localhost", "/srv/my data", "20261122012318"]


def test_quoted_storage_tokens_of_35():
    # quote_string quotes anything holding a ':' -- hence "ST:probe"
    assert split_quoted('PART taper "ST:probe" "POOL:probe" PROBE-01 1') == [
        "PART", "taper", "ST:probe", "POOL:probe", "PROBE-01", "1"]


def test_escaped_quote_and_backslash():
    assert split_quoted(r'"say \"hi\"" "C:\\dir\\" end') == [
        'say "hi"', "C:\\dir\\", "end"]


def test_c_escapes():
    assert split_quoted(r'"a\tb\nc\rd\fe"') == ["a\tb\nc\rd\fe"]


def test_octal_escapes():
    assert split_quoted(r'"\101\102C" "x\040y"') == ["ABC", "x y"]
    # at most three digits belong to the escape
    assert split_quoted(r'"\0601"') == ["01"]


def test_empty_quoted_string():
    assert split_quoted('a "" b') == ["a", "", "b"]
    assert split_quoted('""') == [""]


def test_unknown_escape_keeps_the_character():
    assert split_quoted(r'"\q"') == ["q"]


def test_backslash_eight_or_nine_is_not_octal():
    # unquote_string only takes 0-7 as octal; '\9' is an unknown escape -> '9'
    assert split_quoted(r'"a\9b"') == ["a9b"]


def test_unterminated_quote_runs_to_end_of_line():
    assert split_quoted('x "no end here') == ["x", "no end here"]


def test_sanitise():
    assert sanitise("/tmp/probe/mnt") == "_tmp_probe_mnt"
