"""Correction rounds (human-gated DAgger) on recorded demonstrations and a trained policy.

One round:

1. the policy plays episodes while a corrector watches and takes over where
   the policy misplays (``agents.correction``); every step goes into a
   correction store next to the run, with the round number;
2. the policy retrains on the demonstrations' training episodes plus the
   corrected steps, starting from the last round's weights, and recalibrates
   its thresholds on the demonstrations' validation episodes;
3. the round is scored on the same validation and test episodes as the
   starting policy, and played against the CPU.

With ``profile`` set, the policy plays a real game window through the screen
env (``fightenv/Screen-v0``) and only a person can correct it, because the
expert corrector reads the Arena's true game state. A real game has no CPU to
play scoring rounds against, so step 3 keeps the offline scores and fills
``win_rate`` from the outcomes the profile's ``[[episode.end]]`` probes gave
the round's own corrected episodes (wins over episodes with a win, loss or
draw; None when none had one). That number measures agent and corrector
together, and ``win_rate_source`` is "corrected_episodes". The closed-loop
recall and press-rate fields are None and ``eval_episodes`` is 0.

``OUT/rounds.json`` holds one row per finished round (round 0 is the starting
policy). A run that stops mid-round keeps the episodes already stored, the
interrupted one as a partial episode, and ``resume=True`` plays complete
episodes until the round has ``episodes_per_round`` of them. Partial episodes
are not counted there, but they stay in the round: their corrected steps
train the policy like any others, and the round's ``episodes`` and ``steps``
include them (``partial_episodes`` says how many).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from imitation.data.types import Trajectory

import fightenv
from agents.cli import help_field as _help
from agents.correction import AgreementTally, CorrectedPilot, CorrectionBudget, CorrectionMode, ExpertCorrector
from agents.dataset import WindowedDataset, WindowSpec
from agents.evaluation import evaluate, parse_button_list
from agents.relabel import RELABEL_PILOT
from agents.metrics import SplitReport, evaluate_split
from agents.session import run_episode
from agents.train import DataLayout, SplitData, TrainConfig, TrainingError, fit, predict_logits
from fightenv.arena.cpu import DIFFICULTIES
from fightenv.screen.env import StopRequested

logger = logging.getLogger(__name__)

ROUNDS_FILE = "rounds.json"
CORRECTIONS_DIR = "corrections"
EVAL_SEED = 100_000
"""First seed of the evaluation rounds against the CPU; every DAgger round plays the same seeds."""


class DaggerError(Exception):
    """Error raised when a correction run cannot start or continue; its message gives the cause and the fix."""


class DaggerStopped(Exception):
    """Raised when the stop hotkey or Ctrl+C (SIGINT) ends a run; the stored corrections are kept for ``--resume``."""


@dataclass
class DaggerConfig:
    """Configuration of a correction run; every field is a command-line option of scripts/dagger.py."""

    policy: str = _help("run directory of the starting policy, written by scripts/train_bc.py (required, except "
                        "with --relabel)", default="")
    out: str = _help("directory for the correction store, one policy run per round and rounds.json",
                     default="runs/dagger")
    demos: str = _help("demo store the starting policy was trained on; default: the --demos of its run",
                       default="")
    rounds: int = _help("correction rounds to run", default=3)
    episodes_per_round: int = _help("episodes the policy plays per round", default=10)
    corrector: str = _help("who corrects: expert (the Arena's scripted expert, unattended) or human", default="expert")
    profile: str = _help("game profile (TOML) of a game window for the policy to play through the screen env, "
                         "corrected by --corrector human; default: the built-in Arena env", default="")
    mode: CorrectionMode = _help("takeover: the corrector's buttons replace the agent's; override: they are added; "
                                 "label_all: plain DAgger, the corrector labels every step without taking over",
                                 default=CorrectionMode.TAKEOVER)
    rare_buttons: str = _help("comma-separated buttons whose mistakes make the expert corrector take over",
                              default="guard,grab,special")
    budget_fraction: float = _help("corrected (or, for label_all, labelled) steps over all rounds, as a share "
                                   "of the demonstration steps, split evenly over the rounds. The expert corrector "
                                   "stays hands-off once its round's share is spent. A human corrector's keys "
                                   "are always recorded, because a game receives them anyway: past the share, "
                                   "the agent stops asking for help and the overlay shows 'budget spent'",
                                   default=0.25)
    correction_weight: int = _help("times each corrected step counts in training", default=2)
    holdoff_steps: int = _help("takeover mode: steps the corrector keeps control after letting go", default=2)
    takeover_delay_steps: int = _help("expert corrector: extra steps the agent may miss a rare button before the "
                                      "corrector takes over (its 150 ms reaction delay comes on top)", default=0)
    help_margin: float = _help("the agent asks for help when a rare button's probability is this close to its "
                               "threshold (0 turns help requests off)", default=0.1)
    help_budget: int = _help("help requests the overlay may show per round", default=50)
    epochs: int = _help("training epochs per round (warm start from the last round)", default=4)
    eval_episodes: int = _help("rounds against the CPU to score each policy", default=30)
    difficulty: str = _help(f"CPU level of the Arena: {', '.join(DIFFICULTIES)}", default="normal")
    seed: int = _help("seed of the episodes the policy plays and of the corrector", default=0)
    resume: bool = _help("continue the run in --out: finish the interrupted round, then the rest", default=False)
    relabel: str = _help("instead of a round: replay the last round's episodes of this DAgger --out directory "
                         "slowed down, and store the buttons the player presses as labels", default="")
    countdown_s: float = _help("human corrector on the Arena, and relabel: seconds counted down after the start "
                               "hotkey before each episode (every episode waits for that hotkey)", default=3.0)
    relabel_episodes: int = _help("relabel: how many of the last round's episodes to replay", default=1)
    replay_speed: float = _help("relabel: replay speed as a share of real time", default=0.5)
    skip_bad: bool = _help("leave out corrupt or truncated demo episode files with a warning", default=False)
    progress: bool = _help("show progress bars", default=True)

    def __post_init__(self) -> None:
        self.mode = CorrectionMode(self.mode)
        for name in ("rounds", "episodes_per_round", "correction_weight", "epochs", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.budget_fraction <= 1:
            raise ValueError(f"budget_fraction must be in (0, 1], got {self.budget_fraction}")
        if self.countdown_s < 0:
            raise ValueError(f"countdown_s must be >= 0 seconds, got {self.countdown_s}")
        if not self.replay_speed > 0:
            raise ValueError(f"replay_speed must be positive, got {self.replay_speed}")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"unknown difficulty {self.difficulty!r}; choose one of {', '.join(DIFFICULTIES)}")
        if self.corrector not in ("expert", "human"):
            raise ValueError(f"corrector must be 'expert' or 'human', got {self.corrector!r}")
        if self.profile and self.corrector != "human":
            raise ValueError(
                f"--profile {self.profile} needs --corrector human, got --corrector {self.corrector}: the expert "
                "corrector reads the Arena's true game state, which a game window does not give. Pass --corrector "
                "human to correct on the game yourself, or drop --profile to let the expert correct on the Arena env"
            )

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=lambda value: value.value))


@dataclass
class RoundData:
    """The fixed demonstration splits every round is trained and scored on."""

    layout: DataLayout
    spec: WindowSpec
    train_trajectories: list[Trajectory]
    val: WindowedDataset
    test: WindowedDataset
    demo_steps: int
    description: dict[str, Any]


def load_base_config(policy_dir: Path) -> TrainConfig:
    """Read the training configuration saved next to a policy by scripts/train_bc.py."""
    path = policy_dir / "config.json"
    if not (policy_dir / "policy.json").is_file():
        raise DaggerError(f"no policy found in {policy_dir} (policy.json is missing); pass the --out directory "
                          "of a finished scripts/train_bc.py run as --policy")
    if not path.is_file():
        raise DaggerError(f"{path} is missing; DAgger retrains with the starting run's options, so pass a run "
                          "directory written by scripts/train_bc.py")
    values = json.loads(path.read_text())
    known = {name for name in TrainConfig.__dataclass_fields__}
    values = {key: (tuple(value) if isinstance(value, list) else value) for key, value in values.items() if key in known}
    return TrainConfig(**values)


def prepare_round_data(base: TrainConfig, demo_set) -> RoundData:
    """Split the demonstrations by episode exactly as the starting run did (same seed and shares)."""
    import demos.splits

    layout = DataLayout(
        button_names=tuple(demo_set.button_names), state_names=tuple(demo_set.state_names),
        frame_shape=tuple(demo_set.frame_shape), decision_hz=demo_set.decision_hz, game=demo_set.game,
    )
    spec = WindowSpec(base.n_frames, base.state_window)
    split = demos.splits.split_episodes(demo_set, base.split_fractions, seed=base.seed)
    if not split.train or not split.val or not split.test:
        raise DaggerError(f"the demonstrations in {demo_set.path} split into {len(split.train)}, {len(split.val)} "
                          f"and {len(split.test)} episodes; every split needs at least one, record more episodes")
    pick = demo_set.trajectories
    return RoundData(
        layout=layout,
        spec=spec,
        train_trajectories=[pick[i] for i in split.train],
        val=WindowedDataset.from_trajectories([pick[i] for i in split.val], spec),
        test=WindowedDataset.from_trajectories([pick[i] for i in split.test], spec),
        demo_steps=sum(len(pick[i].acts) for i in split.train),
        description={"kind": "episodes", **split.to_dict()},
    )


def correction_labels(corrections, mode: CorrectionMode) -> list[tuple[Trajectory, np.ndarray]]:
    """Return each correction episode relabelled, with the mask of its steps that train the policy.

    Takeover and override rounds train on the steps where the corrector held
    buttons, labelled with the executed buttons. Plain DAgger and relabelled replays
    train on every step the corrector labelled, with its labels.
    """
    labelled = []
    for i, trajectory in enumerate(corrections.trajectories):
        fields = corrections.step_fields(i)
        length = len(trajectory.acts)
        if mode is CorrectionMode.LABEL_ALL or corrections.episodes[i].pilot == RELABEL_PILOT:
            mask = fields.has_corrector_action[:length]
            labels = np.where(mask[:, None], fields.corrector_action[:length], 0).astype(np.float32)
        else:
            # Hold-off steps are intervened but unlabelled: the corrector had let go.
            mask = (fields.intervened & fields.has_corrector_action)[:length]
            labels = np.asarray(trajectory.acts, dtype=np.float32)
        relabelled = Trajectory(obs=trajectory.obs, acts=labels, infos=None, terminal=trajectory.terminal)
        labelled.append((relabelled, mask))
    return labelled


def build_training_set(data: RoundData, corrections, mode: CorrectionMode, weight: int) -> tuple[WindowedDataset, int]:
    """Return the demonstrations' training episodes plus the corrected steps (each repeated ``weight`` times)."""
    labelled = correction_labels(corrections, mode) if corrections is not None else []
    trajectories = data.train_trajectories + [trajectory for trajectory, _ in labelled]
    dataset = WindowedDataset.from_trajectories(trajectories, data.spec)
    rows = [np.arange(data.demo_steps)]
    start = data.demo_steps
    corrected = 0
    for trajectory, mask in labelled:
        corrected_rows = start + np.flatnonzero(mask)
        rows.extend([corrected_rows] * weight)
        corrected += len(corrected_rows)
        start += len(trajectory.acts)
    return dataset.subset(np.concatenate(rows)), corrected


@torch.no_grad()
def score_policy(policy, dataset: WindowedDataset, button_names: Sequence[str]) -> SplitReport:
    """Score a policy with its own calibration and thresholds on one split."""
    logits = torch.from_numpy(predict_logits(policy, dataset, 1024, torch.device("cpu")))
    probabilities = policy.calibrate(logits)
    decisions = policy.decide(probabilities, sample=False).numpy()
    return evaluate_split(
        dataset.actions.numpy(), probabilities.numpy(), decisions, button_names,
        thresholds=policy.thresholds.numpy().tolist(), episode_lengths=dataset.episode_lengths,
    )


def _make_corrector(config: DaggerConfig, env: gym.Env, button_names: Sequence[str], rare: Sequence[str],
                    round_index: int, thresholds: np.ndarray):
    if config.corrector == "human":
        from agents.human import KeyboardState
        from agents.human_corrector import CorrectionOverlay, HumanCorrector

        if config.profile:
            return _screen_corrector(env, button_names, thresholds)
        keyboard = KeyboardState(button_names).start()
        logger.info("hold any mapped key to take over:\n%s", keyboard.describe())
        return HumanCorrector(keyboard, env.unwrapped.decision_hz, CorrectionOverlay(button_names, thresholds))
    return ExpertCorrector(
        button_names, rare, seed=config.seed + round_index, takeover_delay_steps=config.takeover_delay_steps,
        rare_only=config.mode is CorrectionMode.OVERRIDE,
    )


def _screen_corrector(env: gym.Env, button_names: Sequence[str], thresholds: np.ndarray):
    """Return a human corrector that shares the keyboard with a screen env's key sender.

    The env's keys go out through XTest to the X server the corrector listens
    to, so the corrector drops their echoes (``env.key_echo``). The env leaves
    alone the keys the person has down (``set_person_keys``) and keeps the step
    schedule itself, so the corrector does not pace.
    """
    from agents.human import KeyboardState, hotkeys_from_profile
    from agents.human_corrector import CorrectionOverlay, HumanCorrector

    screen = env.unwrapped
    profile = screen.profile
    keyboard = KeyboardState(button_names, profile.key_for_button, hotkeys_from_profile(profile),
                             echo=screen.key_echo).start()
    screen.set_person_keys(keyboard.held_now)
    logger.info("hold any mapped key to take over:\n%s", keyboard.describe())
    overlay = CorrectionOverlay(button_names, thresholds)
    overlay.place_beside(screen.capture.box)
    return HumanCorrector(keyboard, screen.decision_hz, overlay, pace=False)


def _episode_seed(config: DaggerConfig, round_index: int, episode: int) -> int:
    return config.seed + 10_000 * round_index + episode


def _write_rounds(out: Path, config: DaggerConfig, rows: list[dict[str, Any]]) -> None:
    path = out / ROUNDS_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({"config": config.to_dict(), "rounds": rows}, indent=2) + "\n")
    os.replace(temporary, path)


def format_rounds_table(rows: Sequence[dict[str, Any]], rare: Sequence[str]) -> str:
    """Format the rounds as a text table: corrections, validation scores, rare-button recall, win rate."""
    header = (f"{'round':>5} {'episodes':>8} {'steps':>6} {'interv.':>7} {'rate':>6} {'corrected':>9} "
              f"{'val F1':>7} {'val AP':>7} " + " ".join(f"{'rec ' + name:>12}" for name in rare)
              + f" {'live rec':>8} {'win':>6}")
    lines = [header, "-" * len(header)]
    for row in rows:
        live_recall = ("n/a" if row.get("closed_loop_recall") is None
                       else f"{row['rare_closed_loop_recall_mean'] or 0:.3f}")
        win = "n/a" if row["win_rate"] is None else f"{row['win_rate']:.1%}"
        recalls = " ".join(
            f"{row['test_recall'].get(name) if row['test_recall'].get(name) is not None else float('nan'):>12.3f}"
            for name in rare
        )
        lines.append(
            f"{row['round']:>5} {row['episodes']:>8} {row['steps']:>6} {row['interventions']:>7} "
            f"{row['intervention_rate']:>6.1%} {row['corrected_steps']:>9} {row['val_macro_f1'] or 0:>7.3f} "
            f"{row['val_macro_ap'] or 0:>7.3f} {recalls} {live_recall:>8} {win:>6}"
        )
    partial = sum(row.get("partial_episodes", 0) for row in rows)
    if partial:
        lines.append(f"episodes and steps include {partial} partial episode(s): stopped mid-episode, kept, and "
                     "not counted toward --episodes-per-round; their corrected steps train like the others")
    if any(row.get("win_rate_source") == "corrected_episodes" for row in rows):
        lines.append("win: won share of the round's corrected episodes (agent and person together) by the "
                     "profile's end probes; n/a where no outcome was read. live rec: n/a, no CPU to play against")
    return "\n".join(lines)


def _score_row(round_index: int, run_dir: Path, data: RoundData, env: gym.Env, config: DaggerConfig,
               rare: Sequence[str], outcomes: Sequence[str | None] = ()) -> dict[str, Any]:
    """Score one round's policy offline, and against the CPU on the Arena or from ``outcomes`` on a game window."""
    from agents.policy_files import load_policy
    from agents.policy_pilot import PolicyPilot

    loaded = load_policy(run_dir, env=env)
    val = score_policy(loaded.policy, data.val, data.layout.button_names)
    test = score_policy(loaded.policy, data.test, data.layout.button_names)
    if config.profile:
        return {**_offline_scores(round_index, run_dir, data, val, test, rare), **_outcome_scores(outcomes)}
    # Play against the CPU while the expert silently labels every step: the agent alone decides,
    # and the labels give each button's recall in the states the agent reaches.
    names = data.layout.button_names
    observer = ExpertCorrector(names, rare, seed=config.seed)
    pilot = PolicyPilot(loaded, decision="thresholds", seed=config.seed)
    tally = AgreementTally(CorrectedPilot(pilot, observer, CorrectionMode.LABEL_ALL, CorrectionBudget(2**62)))
    played = evaluate(env, tally, config.eval_episodes, seed=EVAL_SEED, progress=config.progress)
    closed_loop_recall = tally.recall(names)
    return {
        **_offline_scores(round_index, run_dir, data, val, test, rare),
        "closed_loop_recall": closed_loop_recall,
        "rare_closed_loop_recall_mean": _mean([closed_loop_recall[name] for name in rare]),
        "win_rate": played.win_rate,
        "eval_episodes": played.episodes,
        "press_rate": {b.name: b.press_rate for b in played.buttons},
        "mean_hold_steps": {b.name: b.to_dict()["mean_hold_steps"] for b in played.buttons},
    }


def _offline_scores(round_index: int, run_dir: Path, data: RoundData, val: SplitReport, test: SplitReport,
                    rare: Sequence[str]) -> dict[str, Any]:
    test_buttons = test.per_button()
    return {
        "round": round_index,
        "policy": str(run_dir),
        "val_macro_f1": val.macro_f1,
        "val_macro_ap": val.macro_ap,
        "test_macro_f1": test.macro_f1,
        "test_macro_ap": test.macro_ap,
        "test_recall": {name: test_buttons[name].recall for name in data.layout.button_names},
        "rare_recall_mean": _mean([test_buttons[name].recall for name in rare]),
    }


def _outcome_scores(outcomes: Sequence[str | None]) -> dict[str, Any]:
    """Return the live-play fields of a game-window round: win rate from the episodes' end-probe outcomes."""
    decided = [outcome for outcome in outcomes if outcome in ("win", "loss", "draw")]
    return {
        "closed_loop_recall": None,
        "rare_closed_loop_recall_mean": None,
        "win_rate": decided.count("win") / len(decided) if decided else None,
        "win_rate_source": "corrected_episodes",
        "eval_episodes": 0,
        "press_rate": None,
        "mean_hold_steps": None,
    }


def _mean(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def run_dagger(config: DaggerConfig) -> list[dict[str, Any]]:
    """Run the correction rounds of ``config`` and return the rows of rounds.json."""
    from demos.loader import load_demos

    if not config.policy:
        raise DaggerError("no starting policy given; pass --policy RUN_DIR (the --out of scripts/train_bc.py)")
    out = Path(config.out)
    rounds_path = out / ROUNDS_FILE
    if rounds_path.exists() and not config.resume:
        raise DaggerError(f"{out} already contains correction rounds; pass --resume to continue them or choose "
                          "another --out")
    logger.info("config: %s", json.dumps(config.to_dict()))

    # The starting run fixes the demonstrations, their split and the network options.
    base = load_base_config(Path(config.policy))
    demos_path = config.demos or base.demos
    if not config.demos and not Path(demos_path).is_dir():
        raise DaggerError(
            f"the policy in {config.policy} was trained on the demos {demos_path!r}, which is not a directory "
            f"from {Path.cwd()}; pass --demos DIR with that store"
        )
    demo_set = load_demos(demos_path, action_offset=base.action_offset, skip_bad=config.skip_bad)
    from agents.policy_files import load_policy

    # The policy must fit the demonstrations it is corrected against.
    starting = load_policy(config.policy, store=demo_set)
    data = prepare_round_data(base, demo_set)
    # Created only once the policy and demos loaded, so a run rejected above leaves nothing behind.
    out.mkdir(parents=True, exist_ok=True)
    if config.profile:
        # A game window: the policy plays it, and scores it, through the screen env.
        env = play_env = gym.make(fightenv.SCREEN_ID, profile=config.profile)
        try:
            return _run_rounds_or_stop(config, out, base, demos_path, data, env, play_env)
        finally:
            env.close()
    # The Arena gives the frames and decision rate the policy was trained on.
    options = {"difficulty": config.difficulty, **starting.config.arena_options()}
    env = gym.make(fightenv.ARENA_ID, **options)
    # A person needs to see the game; the expert corrector plays headless.
    play_env = env
    if config.corrector == "human":
        play_env = gym.make(fightenv.ARENA_ID, render_mode="human", **options)
    return _run_rounds_or_stop(config, out, base, demos_path, data, env, play_env)


def _run_rounds_or_stop(config: DaggerConfig, out: Path, *args: Any) -> list[dict[str, Any]]:
    """Run ``_run_rounds``, turning Ctrl+C into ``DaggerStopped`` for the round that was in progress."""
    try:
        return _run_rounds(config, out, *args)
    except KeyboardInterrupt:
        # The store has kept an open episode as partial, and the key sender released its keys.
        rounds_path = out / ROUNDS_FILE
        rows = json.loads(rounds_path.read_text())["rounds"] if rounds_path.exists() else []
        round_index = rows[-1]["round"] + 1 if rows else 0
        raise _stopped(round_index, "Ctrl+C", out / CORRECTIONS_DIR) from None


def _run_rounds(config: DaggerConfig, out: Path, base: TrainConfig, demos_path: str, data: RoundData,
                env: gym.Env, play_env: gym.Env) -> list[dict[str, Any]]:
    """Score the starting policy once (round 0), then collect, retrain and score each remaining round."""
    from demos.loader import load_demos
    from demos.store import EpisodeStore

    rounds_path = out / ROUNDS_FILE
    rare = parse_button_list(config.rare_buttons, data.layout.button_names)
    rare_mask = np.array([name in rare for name in data.layout.button_names])
    total_budget = int(config.budget_fraction * data.demo_steps)
    round_budget = total_budget // config.rounds
    logger.info("%d demonstration training steps: at most %d corrected steps in all, %d per round",
                data.demo_steps, total_budget, round_budget)

    rows: list[dict[str, Any]] = []
    if config.resume and rounds_path.exists():
        rows = json.loads(rounds_path.read_text())["rounds"]
        logger.info("resuming after round %d", rows[-1]["round"] if rows else -1)
    if not rows:
        start = {"episodes": 0, "steps": 0, "interventions": 0, "intervention_rate": 0.0, "corrected_steps": 0,
                 "corrections_per_button": {}, "help_requests": 0, "training_steps": data.demo_steps}
        rows.append({**start, **_score_row(0, Path(config.policy), data, env, config, rare)})
        _write_rounds(out, config, rows)

    corrections_path = out / CORRECTIONS_DIR
    for round_index in range(len(rows), config.rounds + 1):
        previous = Path(rows[-1]["policy"])

        # Collect: the policy plays, the corrector steps in; every step is stored as it happens.
        store_mode = "append" if (corrections_path / "manifest.json").exists() else "create"
        store = EpisodeStore.open(
            corrections_path, store_mode, game=env.unwrapped.game_name, button_names=data.layout.button_names,
            state_names=data.layout.state_names, frame_shape=data.layout.frame_shape,
            decision_hz=env.unwrapped.decision_hz, session_config={"dagger": config.to_dict()},
            episode_round=round_index, pilot=f"policy+{config.corrector}",
        )
        stored = _round_episodes(corrections_path, round_index)
        done = sum(1 for info in stored if not info.partial)
        budget = CorrectionBudget(round_budget - _round_usage(corrections_path, stored))
        from agents.policy_pilot import PolicyPilot

        agent = PolicyPilot.from_run(previous, env=env, seed=config.seed + round_index)
        thresholds = agent.policy.thresholds.numpy()
        corrector = _make_corrector(config, play_env, data.layout.button_names, rare, round_index, thresholds)
        pilot = CorrectedPilot(
            agent, corrector, config.mode, budget, holdoff_steps=config.holdoff_steps, thresholds=thresholds,
            help_margin=config.help_margin, rare=rare_mask, help_budget=config.help_budget,
        )
        should_stop = getattr(corrector, "should_stop", None)
        try:
            for episode in range(done, config.episodes_per_round):
                # A person on the Arena starts each episode with the start hotkey; a game window waits for its
                # own start (probe or hotkey) in reset.
                keyboard = getattr(corrector, "keyboard", None)
                if keyboard is not None and not config.profile:
                    from agents.human import wait_for_start

                    episode_label = f"episode {episode + 1}/{config.episodes_per_round} of round {round_index}"
                    if wait_for_start(keyboard, episode_label, config.countdown_s):
                        raise _stopped(round_index, "the stop hotkey", corrections_path)
                try:
                    run_episode(play_env, pilot, seed=_episode_seed(config, round_index, episode), recorder=store,
                                should_stop=should_stop, stop_reason="stopped by the stop hotkey")
                except StopRequested as error:
                    # The screen env's own stop hotkey, pressed while it waited for a round to start.
                    raise _stopped(round_index, "the stop hotkey", corrections_path) from error
                if should_stop is not None and should_stop():
                    raise _stopped(round_index, "the stop hotkey", corrections_path)
        finally:
            store.close()
            if hasattr(corrector, "keyboard"):
                corrector.keyboard.close()
            if getattr(corrector, "overlay", None) is not None:
                corrector.overlay.close()
        logger.info("round %d: %d interventions, %d help requests, %d corrected steps against a budget of %d",
                    round_index, pilot.interventions, pilot.help_requests, round_budget - budget.steps_left,
                    round_budget)
        echo = getattr(play_env.unwrapped, "key_echo", None)
        if echo is not None:
            logger.info("round %d: the agent sent %d key events; the corrector dropped %d echoes of them",
                        round_index, echo.sent, echo.dropped)

        # Retrain on demonstrations plus corrections, warm-started, with thresholds chosen on validation again.
        corrections = load_demos(corrections_path, action_offset=base.action_offset)
        this_round = [i for i, info in enumerate(corrections.episodes)
                      if info.round == round_index and info.pilot != RELABEL_PILOT]
        train, corrected_steps = build_training_set(data, corrections, config.mode, config.correction_weight)
        run_dir = out / f"round_{round_index}"
        resume_training = (run_dir / "checkpoint" / "state.json").exists()
        round_config = replace(
            base, demos=str(demos_path), out=str(run_dir), epochs=config.epochs, patience=config.epochs,
            init_from="" if resume_training else str(previous), resume=resume_training, progress=config.progress,
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(round_config.to_dict(), indent=2))
        split_data = SplitData(data.layout, train, data.val, data.test,
                               description={**data.description, "corrected_steps": corrected_steps,
                                            "correction_weight": config.correction_weight})
        try:
            fit(round_config, split_data, run_dir)
        except TrainingError as error:
            raise DaggerError(f"retraining in round {round_index} failed: {error}") from error

        # Score and record the round.
        steps, intervened, per_button = _round_statistics(corrections, this_round, data.layout.button_names)
        row = {
            "episodes": len(this_round),
            "partial_episodes": sum(1 for i in this_round if corrections.episodes[i].partial),
            "steps": steps,
            "interventions": _count_runs(corrections, this_round),
            "intervention_rate": intervened / steps if steps else 0.0,
            "corrected_steps": _labelled(corrections, this_round),
            "corrections_per_button": per_button,
            "help_requests": pilot.help_requests,
            "training_steps": len(train),
            "total_corrected_steps": corrected_steps,
        }
        outcomes = [corrections.episodes[i].outcome for i in this_round]
        rows.append({**row, **_score_row(round_index, run_dir, data, env, config, rare, outcomes)})
        _write_rounds(out, config, rows)
        print(format_rounds_table(rows, rare), flush=True)
    return rows


def _stopped(round_index: int, cause: str, corrections_path: Path) -> DaggerStopped:
    return DaggerStopped(f"stopped in round {round_index} by {cause}; the corrections so far are kept in "
                         f"{corrections_path}; continue with --resume")


def _round_episodes(store_path: Path, round_index: int) -> list[Any]:
    """Return the metadata of the episodes of ``round_index`` already in the correction store."""
    from demos.loader import list_episodes

    if not (store_path / "manifest.json").exists():
        return []
    return [info for info in list_episodes(store_path) if info.round == round_index and info.pilot != RELABEL_PILOT]


def _round_usage(store_path: Path, stored: Sequence[Any]) -> int:
    """Return the steps with a corrector label (the budget's unit) in the stored episodes."""
    from demos.loader import load_demos

    if not stored:
        return 0
    loaded = load_demos(store_path, episodes=[info.episode_id for info in stored])
    used = 0
    for i in range(len(loaded)):
        fields = loaded.step_fields(i)
        used += int(fields.has_corrector_action.sum())
    return used


def _round_statistics(corrections, episodes: Sequence[int], button_names: Sequence[str]):
    steps = intervened = 0
    per_button = np.zeros(len(button_names), dtype=np.int64)
    for i in episodes:
        fields = corrections.step_fields(i)
        steps += len(fields.intervened)
        intervened += int(fields.intervened.sum())
        mask = fields.intervened & fields.has_corrector_action
        per_button += ((fields.corrector_action[mask] != fields.agent_action[mask]).sum(axis=0)).astype(np.int64)
    return steps, intervened, dict(zip(button_names, per_button.tolist()))


def _labelled(corrections, episodes: Sequence[int]) -> int:
    return sum(int(corrections.step_fields(i).has_corrector_action.sum()) for i in episodes)


def _count_runs(corrections, episodes: Sequence[int]) -> int:
    """Count interventions: runs of consecutive intervened steps."""
    total = 0
    for i in episodes:
        flags = corrections.step_fields(i).intervened.astype(np.int8)
        total += int(flags[0]) + int(np.sum((flags[1:] == 1) & (flags[:-1] == 0))) if len(flags) else 0
    return total


def run_relabel(config: DaggerConfig) -> int:
    """Replay the last round's episodes of ``config.relabel`` slowed down and store the player's labels.

    Returns the number of relabelled steps. The next ``--resume`` round trains on them.
    """
    from agents.human import HumanPilot, KeyboardState, wait_for_start
    from agents.relabel import RelabelPilot, ReplayEnv
    from demos.loader import load_demos
    from demos.store import EpisodeStore

    store_path = Path(config.relabel) / CORRECTIONS_DIR
    if not (store_path / "manifest.json").exists():
        raise DaggerError(f"no correction store in {config.relabel} ({store_path} is missing); pass the --out "
                          "directory of an earlier dagger.py run to --relabel")
    stored = load_demos(store_path)
    played = [i for i, info in enumerate(stored.episodes) if info.pilot != RELABEL_PILOT and info.round > 0]
    if not played:
        raise DaggerError(f"{store_path} contains no episodes played by the agent yet; run a correction round first")
    last_round = max(stored.episodes[i].round for i in played)
    chosen = [i for i in played if stored.episodes[i].round == last_round][-config.relabel_episodes:]

    keyboard = KeyboardState(stored.button_names).start()
    logger.info("replaying %d episode(s) of round %d at %.2fx speed; press the buttons the agent should have "
                "pressed:\n%s", len(chosen), last_round, config.replay_speed, keyboard.describe())
    store = EpisodeStore.open(
        store_path, "append", game=stored.game, button_names=stored.button_names, state_names=stored.state_names,
        frame_shape=stored.frame_shape, decision_hz=stored.decision_hz,
        session_config={"relabel": config.to_dict()}, episode_round=last_round, pilot=RELABEL_PILOT,
    )
    pilot = RelabelPilot(HumanPilot(keyboard, stored.decision_hz * config.replay_speed))
    labelled = 0
    try:
        for number, i in enumerate(chosen, start=1):
            if wait_for_start(keyboard, f"replay {number}/{len(chosen)}", config.countdown_s):
                break
            replay = ReplayEnv(stored, i, render_mode="human")
            try:
                result = run_episode(replay, pilot, seed=stored.episodes[i].seed, recorder=store,
                                     should_stop=lambda: keyboard.has_event("stop"))
            finally:
                replay.close()
            labelled += result.steps
            if keyboard.has_event("stop"):
                break
    finally:
        store.close()
        keyboard.close()
    logger.info("stored %d relabelled steps in %s; run dagger.py --resume with one more --rounds to train on them",
                labelled, store_path)
    return labelled
