"""Discovery: one commit of a monorepo in, one validated execution plan (a discovery document) out.

Every project with a ``.forge/`` folder is found in the commit's tree; ``repo.cue`` and every
``.cue`` file of each project's ``.forge/`` are evaluated in CUE batches (of at most
``batch_projects`` projects: an evaluation's cost grows faster than its size, so a large monorepo
is evaluated in linear time), with the packages of the
repository's CUE module they import laid out beside it (only the projects whose inputs changed
since a previous discovery: see :mod:`forge_core.services.discovery_cache`), checked against the
installed plugins,
and turned into phase groups, tasks, artifacts, release decisions and deploy resources. Problems
become diagnostics naming file and line; the projects without problems are still planned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from forge_core.domain.config import Diagnostic, ProjectConfig, RepoConfig, ValueProblem, project_name
from forge_core.domain.models import ProjectRef, PublishTarget, SourceEvent, TriggerDecision
from forge_core.domain.plan import DiscoveryDocument, ReleaseDecision, build_groups, plan_project
from forge_core.domain.triggers import VERSION_PATTERN, release_tag, tag_version
from forge_core.plugin.family import Family
from forge_core.plugin.registry import Registry
from forge_core.services.cue_module import ModuleTree, Resolved, cue_loads, unquote
from forge_core.services.cue_source import locate_in
from forge_core.services.discovery_cache import DiscoveryCache, digest
from forge_core.services.evaluation import (
    CueEvaluator,
    CueLimitError,
    Header,
    Mapped,
    Source,
    build_batch,
    compatible_imports,
    diagnostics_for,
    map_error,
    schema_text,
    split_header,
)
from forge_core.services.plugin_checks import PluginChecks, Problem

BATCH_PROJECTS = 200
"""Projects evaluated together at most (the default of ``FORGE_CUE__BATCH_PROJECTS``)."""
REPO_FILE = ".forge/repo.cue"
HALVED_LIMITS = ("FORGE_CUE__MAX_INPUT_BYTES", "FORGE_CUE__MAX_MEMORY_MB")
"""A batch that hits one of these is evaluated in halves: the project that hits it alone is named."""
PROJECT_FILE = "project.cue"
RUNTIME_NAME = "#forge"


class TreeEntryLike(Protocol):
    path: str
    type: str
    oid: str


class CommitSource(Protocol):
    """The files of one commit (adapters.git.CommitReader)."""

    def entries(self, commit: str) -> list[Any]: ...

    def read_blobs(self, oids: Iterable[str]) -> dict[str, str]: ...


def runtime_values(event: SourceEvent) -> dict[str, str]:
    """What ``#forge`` holds: commit, shortCommit, branch, tag, version (from the tag), hashOrTag."""
    tag = event.tag or ""
    match = VERSION_PATTERN.match(tag.rpartition("/")[2])
    return {
        "commit": event.commit,
        "shortCommit": event.commit[:7],
        "branch": event.branch or "",
        "tag": tag,
        "version": match.group("version") if match else "",
        "hashOrTag": tag or event.commit,
    }


def installed_names(registry: Registry) -> dict[str, list[str]]:
    """The CUE definition of each family users name in CUE → the names installed in it."""
    return {family.cue: registry.names(family) for family in Family if family.cue}


@dataclass
class _Project:
    key: str
    path: str
    file: str  # its project.cue
    oid: str | None
    others: tuple[tuple[str, str], ...] = ()  # the other .cue files of its .forge/ (path, blob id)
    static_key: str = ""
    texts: dict[str, str] = field(default_factory=dict)  # every file's text, once read
    depends: list[str] = field(default_factory=list)  # module folders its evaluation loaded
    value: dict[str, Any] | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        return self.texts.get(self.file)

    def blob_ids(self) -> list[tuple[str, str]]:
        return [(self.file, self.oid or ""), *self.others]

    def sources(self) -> list[Source]:
        return [Source(self.key, path, self.texts.get(path, "")) for path, _ in self.blob_ids()]


@dataclass
class _Outcome:
    repo: dict[str, Any] | None = None
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[Mapped] = field(default_factory=list)


class Discovery:
    """Discovers commits with one evaluator, registry and cache (a worker keeps one alive)."""

    def __init__(
        self, registry: Registry, evaluator: CueEvaluator, cache: DiscoveryCache, *,
        max_file_bytes: int | None = None, batch_projects: int = BATCH_PROJECTS, parallel: int = 1,
    ) -> None:
        """``max_file_bytes``: the largest CUE file read (default: the evaluator's settings'
        ``max_file_bytes``, when it has settings; else no limit but the evaluator's own).
        ``batch_projects``: most projects one evaluation takes; ``parallel``: batches at once."""
        self.registry, self.evaluator, self.cache = registry, evaluator, cache
        self.batch_projects, self.parallel = batch_projects, parallel
        limits = getattr(evaluator, "limits", None)
        self.max_file_bytes = max_file_bytes or getattr(limits, "max_file_bytes", None)
        self.names = installed_names(registry)
        self.checks = PluginChecks(registry)
        self._publishers: dict[str, PublishTarget] = {}
        self._triggers: dict[str, Any] = {}
        self._fingerprint = digest(schema_text(), evaluator.version, self.names)

    # --- the whole thing -------------------------------------------------------------------

    def discover(self, source: CommitSource, event: SourceEvent) -> DiscoveryDocument:
        entries = {e.path: e for e in source.entries(event.commit)}
        repo_entry = entries.get(REPO_FILE)
        if repo_entry is None or repo_entry.type != "blob":
            missing = Diagnostic(file=REPO_FILE, message="the repository has no .forge/repo.cue at its root")
            return DiscoveryDocument(event=event, diagnostics=(missing,))
        runtime = runtime_values(event)
        projects, diagnostics = self._find_projects(entries)
        module = ModuleTree(entries)
        repo_key = digest(self._fingerprint, repo_entry.oid)
        repo_cached = self.cache.lookup(repo_key, runtime, module.state)
        misses, refused = [], 0
        for project in projects:
            if project.oid is None:
                continue
            forge_tree = entries[f"{project.path}/.forge"].oid
            project.static_key = digest(self._fingerprint, repo_entry.oid, forge_tree, project.path)
            hit = self.cache.lookup(project.static_key, runtime, module.state)
            if hit is None or repo_cached is None:
                misses.append(project)
            else:
                project.value = hit.get("value")
                project.diagnostics = [Diagnostic(**d) for d in hit.get("diagnostics", [])]
        repo_value = repo_cached.get("value") if repo_cached else None
        repo_text: str | None = None
        if misses or repo_cached is None:
            sizes = self._sizes(source, [repo_entry.oid, *(oid for p in misses for _, oid in p.blob_ids())])
            too_large = self._too_large(REPO_FILE, sizes.get(repo_entry.oid))
            if too_large is not None:
                return DiscoveryDocument(event=event, diagnostics=(too_large,))
            for project in list(misses):
                oversized = [d for path, oid in project.blob_ids() if (d := self._too_large(path, sizes.get(oid)))]
                if oversized:  # never read, never evaluated, never cached (the limit may change)
                    project.diagnostics, refused = oversized, refused + 1
                    misses.remove(project)
            blobs = source.read_blobs([repo_entry.oid, *(oid for p in misses for _, oid in p.blob_ids())])
            repo_text = blobs[repo_entry.oid]
            repo_source = Source("repo", REPO_FILE, repo_text)
            for project in misses:
                project.texts = {path: blobs[oid] for path, oid in project.blob_ids()}
            checked = _SizeChecked(source, entries, self.max_file_bytes) if self.max_file_bytes else source
            repo_value, repo_diagnostics, repo_depends = self._evaluate(repo_source, misses, runtime, module, checked)
            if repo_value is None:  # never cached: an invalid repo.cue is evaluated again next time
                return DiscoveryDocument(event=event, diagnostics=tuple(repo_diagnostics))
            self.cache.store(repo_key, runtime, False, {"value": repo_value}, repo_depends, module.state)
            for project in misses:
                result = {"value": project.value, "diagnostics": [d.model_dump() for d in project.diagnostics]}
                uses_runtime = any(RUNTIME_NAME in text for text in project.texts.values())
                self.cache.store(project.static_key, runtime, uses_runtime, result, project.depends, module.state)
        assert repo_value is not None
        try:
            repo = RepoConfig.from_value(repo_value)
        except ValueProblem as exc:  # what the schema cannot say: an environments block's order
            repo_text = repo_text or source.read_blobs([repo_entry.oid])[repo_entry.oid]
            problem = _diagnostic({REPO_FILE: repo_text}, Problem(exc.path, str(exc)))
            return DiscoveryDocument(event=event, diagnostics=(problem,))
        self._publishers = dict(repo.publishers)
        repo_problems = self.checks.repo(repo)
        if repo_problems:
            repo_text = repo_text or source.read_blobs([repo_entry.oid])[repo_entry.oid]
            diagnostics += [_diagnostic({REPO_FILE: repo_text}, p) for p in repo_problems]
        event = event.model_copy(update={"tagging_strategy": repo.tagging_strategy})
        configs = self._configs(projects, source, diagnostics)
        diagnostics += [d for p in projects for d in p.diagnostics]
        diagnostics += self._check_tag(event, configs)
        groups = build_groups(repo, configs)
        plans = tuple(plan_project(repo, c, self._release(c, event)) for c in sorted(configs, key=lambda c: c.name))
        return DiscoveryDocument(
            event=event,
            forge_version=repo.forge_version,
            tagging_strategy=repo.tagging_strategy,
            groups=groups,
            projects=plans,
            diagnostics=tuple(sorted(diagnostics, key=lambda d: (d.file, d.line or 0, d.column or 0))),
            environments=repo.environments,
            evaluated=len(misses),
            cached=sum(1 for p in projects if p.oid) - len(misses) - refused,
        )

    # --- finding projects ------------------------------------------------------------------

    def _find_projects(self, entries: Mapping[str, TreeEntryLike]) -> tuple[list[_Project], list[Diagnostic]]:
        projects, diagnostics = [], []
        folders = sorted(p[: -len("/.forge")] for p, e in entries.items() if e.type == "tree" and p.endswith("/.forge"))
        others: dict[str, list[tuple[str, str]]] = {}
        for path, blob in entries.items():
            forge, _, name = path.rpartition("/")
            if blob.type == "blob" and forge.endswith("/.forge") and name != PROJECT_FILE and cue_loads(name):
                others.setdefault(forge[: -len("/.forge")], []).append((path, blob.oid))
        for index, folder in enumerate(folders):
            file = f"{folder}/.forge/{PROJECT_FILE}"
            entry = entries.get(file)
            if entry is None or entry.type != "blob":
                diagnostics.append(
                    Diagnostic(
                        file=f"{folder}/.forge",
                        message=f"a .forge folder without {PROJECT_FILE}: add one, or remove the folder",
                        project=project_name(folder),
                    )
                )
                continue
            more = tuple(sorted(others.get(folder, ())))
            projects.append(_Project(key=f"p{index}", path=folder, file=file, oid=entry.oid, others=more))
        return projects, diagnostics

    def _sizes(self, source: CommitSource, oids: list[str]) -> dict[str, int]:
        """The sizes of blobs about to be read (when there is a limit and the source tells them)."""
        sizes = getattr(source, "blob_sizes", None)
        if self.max_file_bytes is None or sizes is None:
            return {}
        found: dict[str, int] = sizes(oids)
        return found

    def _too_large(self, path: str, size: int | None) -> Diagnostic | None:
        """A diagnostic for a file over ``max_file_bytes`` (its size known before it is read)."""
        if self.max_file_bytes is None or size is None or size <= self.max_file_bytes:
            return None
        folder = path.partition("/.forge/")[0] if "/.forge/" in path else None
        return Diagnostic(
            file=path, project=project_name(folder) if folder else None,
            message=f"the file is {_size(size)}, over the limit of {_size(self.max_file_bytes)} for one CUE "
            f"file (FORGE_CUE__MAX_FILE_BYTES): it was neither read nor evaluated",
        )

    # --- evaluation ------------------------------------------------------------------------

    def _evaluate(
        self, repo: Source, projects: list[_Project], runtime: dict[str, str], module: ModuleTree,
        source: CommitSource,
    ) -> tuple[dict[str, Any] | None, list[Diagnostic], list[str]]:
        """Evaluate repo.cue and ``projects``; fills each project's value or diagnostics, and the
        module folders each depends on. Returns repo.cue's value, or its diagnostics, and folders."""
        repo_header = split_header(repo.text, repo.file)
        if isinstance(repo_header, Diagnostic):
            return None, [repo_header], []
        headers: dict[str, Header] = {repo.file: repo_header}
        sources = {"repo": repo}
        runnable = []
        for project in projects:
            problems = self._split_headers(project, headers)
            if problems:
                project.diagnostics += problems
                continue
            sources[project.key] = project.sources()[0]
            runnable.append(project)
        layout, repo_depends = self._module_files(repo, runnable, headers, module, source)
        outcome = _Outcome()
        batches = [batch for group in self._import_groups([p.sources() for p in runnable], headers)
                   for batch in _batches(group, self.batch_projects)]
        if self.parallel > 1 and len(batches) > 1:  # the evaluator takes as many at once (a pool)
            with ThreadPoolExecutor(min(self.parallel, len(batches)), thread_name_prefix="forge-cue") as pool:
                for _ in pool.map(lambda batch: self._run(repo, batch, headers, runtime, outcome, layout), batches):
                    pass
        else:
            for batch in batches:
                self._run(repo, batch, headers, runtime, outcome, layout)
        repo_errors = [e for e in outcome.errors if e.key == "repo"]
        if outcome.repo is None and not repo_errors:
            self._run(repo, [], headers, runtime, outcome, layout)
            repo_errors = [e for e in outcome.errors if e.key == "repo"]
        names = dict(self.names)
        if outcome.repo is not None:
            names["#PhaseName"] = sorted(outcome.repo.get("phases", {}))
            names["#PublisherName"] = sorted(outcome.repo.get("publishers", {}))
        folder_names = {p.key: project_name(p.path) for p in projects}
        texts = {**layout, **{path: text for p in runnable for path, text in p.texts.items()}}
        errors: dict[str | None, list[Mapped]] = {}
        for error in outcome.errors:
            errors.setdefault(error.key, []).append(error)

        def diagnostics(key: str) -> list[Diagnostic]:
            return diagnostics_for(errors.get(key, []), sources, names, folder_names, texts)

        if repo_errors or outcome.repo is None:
            return None, diagnostics("repo") or [Diagnostic(file=REPO_FILE, message="repo.cue does not evaluate")], []
        for project in projects:
            project.value = outcome.values.get(project.key)
            project.diagnostics += diagnostics(project.key)
            if project.value is None and not project.diagnostics:
                project.diagnostics.append(Diagnostic(file=project.file, message="does not evaluate"))
        return outcome.repo, [], repo_depends

    @staticmethod
    def _split_headers(project: _Project, headers: dict[str, Header]) -> list[Diagnostic]:
        """Split the headers of a project's files into ``headers``; what keeps them from being one
        package: a malformed header, another package name, one import name for two paths."""
        problems: list[Diagnostic] = []
        name = project_name(project.path)
        imports: dict[str, tuple[str, str]] = {}
        for item in project.sources():
            header = split_header(item.text, item.file)
            if isinstance(header, Diagnostic):
                problems.append(header.model_copy(update={"project": name}))
                continue
            headers[item.file] = header
            main = headers.get(project.file)
            if main is not None and header.package != main.package:
                problems.append(Diagnostic(
                    file=item.file, line=header.package_line, column=1, project=name,
                    message=f"package {header.package} differs from {project.file}'s package {main.package}: "
                    "the .cue files of one .forge folder form one package",
                ))
            for alias, path in header.imports:
                first = imports.setdefault(alias or path, (path, item.file))
                if first[0] != path:
                    problems.append(Diagnostic(
                        file=item.file, line=header.package_line, column=1, project=name,
                        message=f"import name {alias} is {first[0]} in {first[1]} and {path} here: the files of "
                        "one .forge folder are evaluated together, so give one of them another name",
                    ))
        return problems

    @staticmethod
    def _module_files(
        repo: Source, projects: list[_Project], headers: Mapping[str, Header], module: ModuleTree,
        source: CommitSource,
    ) -> tuple[dict[str, str], list[str]]:
        """The module files the batch imports (path → text), and repo.cue's module folders; each
        project's folders (repo.cue's included: its value is part of the project's) are set."""
        blobs: dict[str, str] = {}

        def read(oids: list[str]) -> dict[str, str]:
            missing = [oid for oid in oids if oid not in blobs]
            if missing:
                blobs.update(source.read_blobs(missing))
            return {oid: blobs[oid] for oid in oids}

        resolved: dict[frozenset[str], Resolved] = {}

        def resolve(files: list[str]) -> Resolved:
            paths = frozenset(unquote(spec) for file in files for _, spec in headers[file].imports)
            if paths not in resolved:
                resolved[paths] = module.resolve(paths, read)
            return resolved[paths]

        repo_resolved = resolve([repo.file])
        layout = dict(repo_resolved.files)
        for project in projects:
            own = resolve([path for path, _ in project.blob_ids()])
            layout.update(own.files)
            project.depends = sorted({*own.folders, *repo_resolved.folders})
        return layout, repo_resolved.folders

    def _import_groups(
        self, projects: list[list[Source]], headers: Mapping[str, Header]
    ) -> list[list[list[Source]]]:
        """Batches whose imports agree (one alias, one path); almost always just one."""
        groups: list[tuple[dict[str, str], list[list[Source]]]] = []
        for files in projects:
            header = Header(tuple(spec for item in files for spec in headers[item.file].imports), 1)
            for imports, members in groups:  # noqa: B007 (the group found is used after the loop)
                if compatible_imports(imports, header):
                    break
            else:
                imports, members = {}, []
                groups.append((imports, members))
            imports.update({alias or path: path for alias, path in header.imports})
            members.append(files)
        return [members for _, members in groups] or [[]]

    def _run(
        self, repo: Source, projects: list[list[Source]], headers: Mapping[str, Header], runtime: dict[str, str],
        outcome: _Outcome, layout: Mapping[str, str],
    ) -> None:
        """Export one batch (each project: its files); on errors, set the failing projects aside and
        evaluate the rest again; errors that name no value (syntax errors) are narrowed down by halving."""
        batch = build_batch(repo, [item for files in projects for item in files], headers, self.names, runtime)
        try:
            result = self.evaluator.export(batch.files, layout)
        except CueLimitError as hit:
            if hit.where in HALVED_LIMITS and len(projects) > 1:  # halve: the input size is checked before
                # evaluating, and a memory cap is hit fast; a timeout would cost itself again each time
                half = len(projects) // 2
                self._run(repo, projects[:half], headers, runtime, outcome, layout)
                self._run(repo, projects[half:], headers, runtime, outcome, layout)
                return  # each half fits alone: evaluated apart, as it has to be
            raise _naming_the_files(hit, repo, projects) from None
        keys = [files[0].key for files in projects]
        if result.ok:
            outcome.repo = result.value["repo"]
            for key in keys:
                outcome.values[key] = result.value["projects"][key]
            return
        mapped = [map_error(batch, e) for e in result.errors]
        if any(m.key == "repo" for m in mapped):  # repo.cue is wrong: nothing else can be evaluated
            outcome.errors += [m for m in mapped if m.key == "repo"]
            return
        if any(not e.path for e in result.errors) and len(projects) > 1:
            half = len(projects) // 2
            self._run(repo, projects[:half], headers, runtime, outcome, layout)
            self._run(repo, projects[half:], headers, runtime, outcome, layout)
            return
        if len(projects) == 1:
            mapped = [Mapped(m.key or keys[0], m.path, m.message, m.positions) for m in mapped]
        outcome.errors += mapped
        failed = {m.key for m in mapped}
        rest = [files for files in projects if files[0].key not in failed]
        if rest and len(rest) < len(projects):
            self._run(repo, rest, headers, runtime, outcome, layout)
        elif not failed & set(keys):  # errors in no one's file: report them as they are
            words = "; ".join(f"{e.path}: {e.message}" if e.path else e.message for e in result.errors[:5])
            outcome.errors.append(Mapped("repo", "", f"evaluation failed: {words}", ()))

    # --- from values to configurations -----------------------------------------------------

    def _configs(
        self, projects: list[_Project], source: CommitSource, diagnostics: list[Diagnostic]
    ) -> list[ProjectConfig]:
        configs: list[tuple[_Project, ProjectConfig]] = []
        for project in projects:
            if project.value is None or project.diagnostics:
                continue
            try:
                config = ProjectConfig.from_value(project.value, path=project.path, config_file=project.file)
                problems = self.checks.project(config, self._publishers)
            except ValueProblem as exc:  # what the schema cannot say: exactly one producer, one trigger type
                problems, config = [Problem(exc.path, str(exc))], None
            if problems:
                if not project.texts:  # a cached project: read its files only now
                    blobs = source.read_blobs([oid for _, oid in project.blob_ids()])
                    project.texts = {path: blobs[oid] for path, oid in project.blob_ids()}
                name = config.name if config else project_name(project.path)
                diagnostics += [_diagnostic(project.texts, p, name) for p in problems]
                continue
            assert config is not None
            configs.append((project, config))
        by_name: dict[str, list[ProjectConfig]] = {}
        for _, config in configs:
            by_name.setdefault(config.name, []).append(config)
        for name, same in by_name.items():
            if len(same) > 1:
                files = ", ".join(c.config_file for c in same)
                diagnostics += [
                    Diagnostic(file=c.config_file, message=f"two projects are named {name!r}: {files}", project=name)
                    for c in same
                ]
        return [c for _, c in configs if len(by_name[c.name]) == 1]

    # --- release decisions -----------------------------------------------------------------

    def _check_tag(self, event: SourceEvent, configs: list[ProjectConfig]) -> list[Diagnostic]:
        expected = "<project>/v<semver>" if event.tagging_strategy == "monorepo" else "v<semver>"
        known = ", ".join(sorted(c.name for c in configs)) or "none"
        return [
            Diagnostic(
                file=f"refs/tags/{tag}",
                message=f"tag {tag!r} matches no project (tagging strategy {event.tagging_strategy}: "
                f"{expected}; projects: {known})",
            )
            for tag in event.all_tags()
            if not any(tag_version(tag, c.name, event.tagging_strategy) for c in configs)
        ]

    def _trigger(self, name: str) -> Any:
        """One trigger plugin instance per type for the discovery (not one per project)."""
        if name not in self._triggers:
            self._triggers[name] = self.registry.create(Family.TRIGGER, name)
        return self._triggers[name]

    def _release(self, config: ProjectConfig, event: SourceEvent) -> ReleaseDecision:
        ref = ProjectRef(name=config.name, path=config.path)
        decisions: list[TriggerDecision] = [
            self._trigger(spec.type).evaluate(spec, event, ref) for spec in config.triggers
        ]
        found = release_tag(event, config.name)
        version = found[1] if found else None
        fired = [d for d in decisions if d.fired]
        if fired:
            return ReleaseDecision(release=True, reason=fired[0].reason, version=version, triggers=tuple(decisions))
        if not decisions:
            return ReleaseDecision(release=False, reason="no release triggers (release.on is empty)")
        reason = "no trigger fired: " + "; ".join(d.reason for d in decisions)
        return ReleaseDecision(release=False, reason=reason, triggers=tuple(decisions))


def _batches(projects: list[list[Source]], size: int) -> list[list[list[Source]]]:
    """``projects`` in batches of at most ``size`` (one empty batch when there are none)."""
    return [projects[i:i + size] for i in range(0, len(projects), size)] or [projects]


def _diagnostic(files: Mapping[str, str], problem: Problem, project: str | None = None) -> Diagnostic:
    """A problem found after evaluation, at the line (and column) of the file (of ``files``, one
    package: name → text) that wrote its value path; the first file when none does."""
    found = locate_in(files, problem.path)
    file, (line, column) = found if found else (next(iter(files)), (None, None))
    return Diagnostic(file=file, line=line, column=column, message=problem.message, project=project)


def _size(size: int) -> str:
    return f"{size} bytes" if size < 1024 * 1024 else f"{size / (1024 * 1024):.1f} MiB ({size} bytes)"


_NAMED = 10
"""How many of an evaluation's files a limit error names (the rest are counted)."""


def _naming_the_files(hit: CueLimitError, repo: Source, projects: list[list[Source]]) -> CueLimitError:
    """``hit`` (a limit of one evaluation) saying which files that evaluation held: one project's
    file when it held one project; the first few and a count when it held a batch."""
    files = [item.file for group in projects for item in group]
    if not files:
        what = f"evaluating {repo.file}"
    elif len(projects) == 1:
        name = project_name(files[0].partition("/.forge/")[0])
        what = f"evaluating {', '.join(files)} (project {name}) with {repo.file}"
    else:
        named = ", ".join(files[:_NAMED]) + (f" and {len(files) - _NAMED} more" if len(files) > _NAMED else "")
        what = f"evaluating {repo.file} with the files of {len(projects)} projects in one batch: {named}"
    return CueLimitError(
        f"{hit.message}, {what}", where=hit.where, details={**hit.details, "files": [repo.file, *files]}
    )


class _SizeChecked:
    """A commit's files as discovery reads them, refusing a file over ``limit`` before reading it
    (a module's file: every project importing the module needs it, so the discovery fails)."""

    def __init__(self, source: CommitSource, entries: Mapping[str, Any], limit: int) -> None:
        self.source, self.limit = source, limit
        self.paths = {e.oid: e.path for e in entries.values() if e.type == "blob"}

    def entries(self, commit: str) -> list[Any]:
        return self.source.entries(commit)

    def read_blobs(self, oids: Iterable[str]) -> dict[str, str]:
        wanted = list(oids)
        sizes = getattr(self.source, "blob_sizes", None)
        for oid, size in (sizes(wanted) if sizes else {}).items():
            if size > self.limit:
                path = self.paths.get(oid, oid)
                raise CueLimitError(
                    f"{path} is {_size(size)}, over the limit of {_size(self.limit)} for one CUE file; it "
                    "was not read",
                    where="FORGE_CUE__MAX_FILE_BYTES", details={"file": path, "size": size, "limit": self.limit},
                )
        return self.source.read_blobs(wanted)
