"""Game profiles: the shipped profiles load, and invalid ones fail with errors that name the key and the fix."""

from __future__ import annotations

import textwrap

import pytest

from fightenv.arena import BUTTONS, STATE_FEATURES
from fightenv.screen.keys import normalize_key_name
from fightenv.screen.profile import ARENA_PROFILE, PROFILES_DIR, ProfileError, load_profile

MINIMAL = """
name = "game"
[window]
title = "Game"
[buttons]
left = "a"
right = "d"
[[probes]]
name = "health"
kind = "bar"
region = [0.0, 0.0, 0.5, 0.1]
colors = [[0, 255, 0]]
"""


def write(tmp_path, text: str, name: str = "game.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_arena_profile_matches_arena():
    profile = load_profile(ARENA_PROFILE)

    assert profile.name == "arena"
    assert profile.buttons == BUTTONS
    assert profile.state_names == STATE_FEATURES
    assert profile.decision_hz == 15.0
    assert profile.window.title == "fightenv Arena"
    assert profile.frame.size == (84, 84)


def test_arena_profile_canonical_keys():
    # The one Arena key map; other tests read keys from the profile, this one pins them.
    profile = load_profile(ARENA_PROFILE)

    assert profile.keys == ("right", "left", "up", "down", "space", "a", "s", "d", "f", "g")
    assert profile.key_for_button["guard"] == "d"
    assert profile.hotkeys == {"episode_start": "f1", "pause": "f2", "episode_end": "f3", "stop": "esc"}


def test_human_defaults_follow_arena_profile():
    from agents.human import DEFAULT_BUTTON_KEYS, DEFAULT_HOTKEYS, KeyboardState

    profile = load_profile(ARENA_PROFILE)

    assert DEFAULT_BUTTON_KEYS == profile.key_for_button
    assert list(DEFAULT_BUTTON_KEYS) == list(BUTTONS)
    assert DEFAULT_HOTKEYS == {
        "start": profile.hotkeys["episode_start"],
        "pause": profile.hotkeys["pause"],
        "end": profile.hotkeys["episode_end"],
        "discard": "f4",
        "stop": profile.hotkeys["stop"],
    }
    # The pilot's own discard key must not clash with the profile's keys.
    keyboard = KeyboardState(BUTTONS)
    assert keyboard.button_keys == profile.key_for_button
    assert keyboard.hotkeys["discard"] not in set(profile.keys) | set(profile.hotkeys.values())


def test_human_hotkeys_from_partial_profile(tmp_path):
    from agents.human import hotkeys_from_profile

    # Without episode_start the pilot's start key falls back to f1; discard always comes from the pilot.
    text = MINIMAL + '[hotkeys]\npause = "f8"\nstop = "f10"\nepisode_end = "f9"\n'
    hotkeys = hotkeys_from_profile(load_profile(write(tmp_path, text)))

    assert hotkeys == {"start": "f1", "pause": "f8", "end": "f9", "discard": "f4", "stop": "f10"}


def test_human_hotkeys_need_pause_end_stop(tmp_path):
    from agents.human import hotkeys_from_profile

    text = MINIMAL + '[hotkeys]\npause = "f8"\nstop = "f10"\n'
    path = write(tmp_path, text)
    with pytest.raises(ProfileError, match=r"game\.toml: hotkeys\.episode_end: missing, but the human pilot needs a key for end; add episode_end"):
        hotkeys_from_profile(load_profile(path))


def test_example_profile_loads():
    profile = load_profile(PROFILES_DIR / "fighter3d_example.toml")

    assert len(profile.buttons) >= 8
    assert len(profile.state_names) >= 4
    assert {"pause", "stop", "episode_end"} <= set(profile.hotkeys)
    assert profile.episode.end


def test_minimal_profile_defaults(tmp_path):
    profile = load_profile(write(tmp_path, MINIMAL))

    assert profile.buttons == ("left", "right")
    assert profile.decision_hz == 15.0
    assert profile.frame.size == (84, 84)
    assert profile.frame.color is False
    assert profile.hotkeys == {}
    assert profile.probes[0].direction == "left_to_right"
    assert profile.probes[0].threshold is None


def test_missing_file_names_path(tmp_path):
    with pytest.raises(ProfileError, match=r"game profile '.*nothing\.toml' not found; pass the path"):
        load_profile(tmp_path / "nothing.toml")


def test_invalid_toml_names_file(tmp_path):
    path = write(tmp_path, "name = \n")
    with pytest.raises(ProfileError, match=r"game\.toml: invalid TOML .*fix the syntax"):
        load_profile(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "game"', 'name = "game"\nspeed = 3', r"\(top level\): unknown key\(s\) \['speed'\]"),
        ('right = "d"', 'right = "dd"', r"buttons\.right: unknown key name 'dd'"),
        ('right = "d"', 'right = "a"', r"buttons\.right: key 'a' is already mapped to button 'left'"),
        ('title = "Game"', "", r"window: set exactly one of title .* or region"),
        ('title = "Game"', 'region = [0, 0, -5, 10]', r"window\.region: expected x, y >= 0 and width, height > 0"),
        ('kind = "bar"', 'kind = "blob"', r"probes\.health\.kind: expected one of \['bar', 'color'"),
        ("region = [0.0, 0.0, 0.5, 0.1]", "region = [0.5, 0.0, 0.2, 0.1]", r"probes\.health\.region: expected 0 <= left < right"),
        ("colors = [[0, 255, 0]]", "colors = [[0, 256, 0]]", r"probes\.health\.colors: expected RGB colours .* got \[0, 256, 0\]"),
        ("colors = [[0, 255, 0]]", "colors = [[0, 255, 0]]\ncompare = \"<=\"", r"probes\.health\.compare: compare needs a threshold"),
        ("colors = [[0, 255, 0]]", "colors = [[0, 255, 0]]\nscale = 2.0", r"probes\.health: unknown key\(s\) \['scale'\]"),
        ("colors = [[0, 255, 0]]", "colors = [[0, 255, 0]]\nstep = 0", r"probes\.health\.step: expected an integer from 1 to 8"),
        ('name = "game"', 'name = "game"\ndecision_hz = 0', r"decision_hz: expected a number from 0\.1 to 120"),
    ],
)
def test_invalid_field_names_key(tmp_path, old, new, message):
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_missing_buttons_table(tmp_path):
    text = MINIMAL.replace('[buttons]\nleft = "a"\nright = "d"\n', "")
    with pytest.raises(ProfileError, match=r"buttons: missing table \[buttons\]; add it"):
        load_profile(write(tmp_path, text))


def test_hotkey_on_button_key(tmp_path):
    text = MINIMAL + '[hotkeys]\npause = "a"\n'
    with pytest.raises(ProfileError, match=r"hotkeys\.pause: key 'a' is also a button key"):
        load_profile(write(tmp_path, text))


def test_unknown_hotkey_action(tmp_path):
    text = MINIMAL + '[hotkeys]\nquit = "f10"\n'
    with pytest.raises(ProfileError, match=r"hotkeys: unknown key\(s\) \['quit'\]"):
        load_profile(write(tmp_path, text))


def test_derived_needs_earlier_source(tmp_path):
    text = MINIMAL + '[[probes]]\nname = "low"\nkind = "derived"\nsource = "mana"\nthreshold = 0.2\n'
    with pytest.raises(ProfileError, match=r"probes\.low\.source: unknown probe 'mana'"):
        load_profile(write(tmp_path, text))


def test_duplicate_probe_name(tmp_path):
    text = MINIMAL + '[[probes]]\nname = "health"\nkind = "color"\ncolors = [[1, 2, 3]]\n'
    with pytest.raises(ProfileError, match=r"probes\.health: duplicate probe name"):
        load_profile(write(tmp_path, text))


def test_missing_template_image(tmp_path):
    text = MINIMAL + '[[probes]]\nname = "ko"\nkind = "template"\ntemplate = "ko.png"\nthreshold = 0.8\n'
    with pytest.raises(ProfileError, match=r"probes\.ko\.template: template image '.*ko\.png' not found"):
        load_profile(write(tmp_path, text))


def test_episode_condition_unknown_probe(tmp_path):
    text = MINIMAL + '[episode]\nstart = [{ probe = "mana", threshold = 1.0 }]\n'
    with pytest.raises(ProfileError, match=r"episode\.start\[0\]\.probe: unknown probe 'mana'; name one of \['health'\]"):
        load_profile(write(tmp_path, text))


def test_compare_outcome_needs_scores(tmp_path):
    text = MINIMAL + '[[episode.end]]\nwhen = [{ probe = "health", threshold = 0.0, compare = "<=" }]\noutcome = "compare"\n'
    with pytest.raises(ProfileError, match=r"episode: an end with outcome = \"compare\" needs score_own"):
        load_profile(write(tmp_path, text))


def test_reward_weight_unknown_probe(tmp_path):
    text = MINIMAL + "[reward.weights]\nmana = 1.0\n"
    with pytest.raises(ProfileError, match=r"reward\.weights\.mana: unknown probe"):
        load_profile(write(tmp_path, text))


def test_episode_and_reward_parse(tmp_path):
    text = MINIMAL + textwrap.dedent("""
        [episode]
        start = [{ probe = "health", threshold = 0.99 }]
        max_episode_s = 90
        [[episode.end]]
        when = [{ probe = "health", threshold = 0.01, compare = "<" }]
        outcome = "loss"
        [reward.weights]
        health = 2.0
    """)
    profile = load_profile(write(tmp_path, text))

    assert profile.episode.start[0].threshold.test(1.0)
    assert not profile.episode.start[0].threshold.test(0.5)
    assert profile.episode.end[0].outcome == "loss"
    assert profile.episode.end[0].conditions[0].threshold.test(0.0)
    assert profile.episode.max_episode_s == 90.0
    assert profile.reward_weights == {"health": 2.0}


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("D", "d"), ("Space", "space"), ("F8", "f8"), ("Return", "enter"), ("Escape", "esc"), ("ctrl_l", "ctrl"),
     ("Page Up", "page_up"), (",", ",")],
)
def test_key_names_normalize(name, canonical):
    assert normalize_key_name(name) == canonical


def test_unknown_key_name_lists_choices():
    with pytest.raises(ValueError, match=r"unknown key name 'hyper'; use a letter, digit, .* f8"):
        normalize_key_name("hyper")
