# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find transaction-control statements in a PostgreSQL script, without running it.

appdb_migrations runs each migration file in one transaction together with its ledger row. A file that
says ``COMMIT;`` would end that transaction: what came before it would be kept while the module reports
nothing applied, and no ledger row written -- the next run then fails on "relation already exists". So the
module refuses such a file before it runs anything.

The scanner knows the lexical structure that can hide the words: ``--`` and nested ``/* */`` comments,
string literals ('...', E'...' with backslash escapes, doubled quotes), quoted identifiers ("..."),
dollar-quoted bodies ($$...$$, $tag$...$tag$) and SQL-standard function bodies (BEGIN ATOMIC ... END),
whose inner semicolons do not end the statement. A statement is transaction control when its first words
are one of TRANSACTION_CONTROL.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# First word(s) of a statement -> shown name. BEGIN at the start of a statement is always BEGIN [WORK |
# TRANSACTION] (a PL/pgSQL BEGIN is inside a dollar-quoted body; BEGIN ATOMIC only follows a CREATE).
TRANSACTION_CONTROL = (
    (("START", "TRANSACTION"), "START TRANSACTION"),
    (("PREPARE", "TRANSACTION"), "PREPARE TRANSACTION"),
    (("BEGIN",), "BEGIN"),
    (("COMMIT",), "COMMIT"),
    (("END",), "END"),
    (("ROLLBACK",), "ROLLBACK"),
    (("ABORT",), "ABORT"),
    (("SAVEPOINT",), "SAVEPOINT"),
    (("RELEASE",), "RELEASE"),
)

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_WORD = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")


class UnterminatedError(ValueError):
    """A comment, literal or dollar-quoted body that is never closed (the line where it starts)."""

    def __init__(self, what, line):
        ValueError.__init__(self, "unterminated %s starting on line %d" % (what, line))
        self.line = line


def statements(sql):
    """Yield (line, [upper-case words]) per statement; words outside comments, literals and bodies."""
    i, n = 0, len(sql)
    words, start_line, line = [], None, 1
    depth = 0  # nesting inside BEGIN ATOMIC ... END (CASE ... END counts too)
    while i < n:
        c = sql[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif sql.startswith("/*", i):
            begin, level, i = line, 1, i + 2
            while i < n and level:
                if sql.startswith("/*", i):
                    level, i = level + 1, i + 2
                elif sql.startswith("*/", i):
                    level, i = level - 1, i + 2
                else:
                    line += sql[i] == "\n"
                    i += 1
            if level:
                raise UnterminatedError("comment", begin)
        elif c in "'\"":
            escapes = c == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_word_char(sql[i - 2]))
            begin, i = line, i + 1
            while True:
                if i >= n:
                    raise UnterminatedError("string literal" if c == "'" else "quoted identifier", begin)
                if escapes and sql[i] == "\\":
                    line += sql[i + 1:i + 2] == "\n"
                    i += 2
                    continue
                if sql[i] == c:
                    if sql.startswith(c + c, i):
                        i += 2
                        continue
                    i += 1
                    break
                line += sql[i] == "\n"
                i += 1
            if start_line is None:
                start_line = begin
            words.append("'")  # a literal is a token of its own
        elif c == "$" and (i == 0 or not _is_word_char(sql[i - 1])) and _DOLLAR_TAG.match(sql, i):
            tag = _DOLLAR_TAG.match(sql, i).group(0)
            end = sql.find(tag, i + len(tag))
            if end < 0:
                raise UnterminatedError("dollar-quoted body %s" % tag, line)
            if start_line is None:
                start_line = line
            line += sql.count("\n", i, end + len(tag))
            i = end + len(tag)
            words.append("'")
        elif c == ";":
            if depth:
                i += 1
                continue
            if start_line is not None:
                yield start_line, words
            words, start_line = [], None
            i += 1
        else:
            match = _WORD.match(sql, i)
            if match:
                word = match.group(0).upper()
                if start_line is None:
                    start_line = line
                if word == "ATOMIC" and words and words[-1] == "BEGIN" and len(words) > 1:
                    depth += 1
                elif depth and word == "CASE":
                    depth += 1
                elif depth and word == "END":
                    depth -= 1
                words.append(word)
                i = match.end()
            else:
                if start_line is None:
                    start_line = line
                words.append(c)
                i += 1
    if start_line is not None:
        yield start_line, words


def _is_word_char(ch):
    return ch.isalnum() or ch in "_$"


def transaction_control(sql):
    """[(line, statement name)] of every transaction-control statement in ``sql``.

    Raises UnterminatedError when a comment, literal or body is not closed (PostgreSQL would refuse the
    file too, and an open body would hide the rest of it from this check).
    """
    found = []
    for line, words in statements(sql):
        for prefix, name in TRANSACTION_CONTROL:
            if tuple(words[:len(prefix)]) == prefix:
                found.append((line, name))
                break
    return found
