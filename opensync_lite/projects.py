"""One project per folder. Clients name a session's project by its name ("api"), its folder
("/home/u/src/api", "/home/u/src/api/") or both; whatever they send, a folder is one project.
Its key is the folder's path when any session tells it, else the name; it reads as the folder's
last component (the whole path on hover). Pure functions over the (name, path) pairs a user's
sessions carry; ``queries`` reads the pairs and turns a key back into a WHERE clause."""


def folder(path):
    """``path`` without the slashes that end it (the root stays "/"); None for no path."""
    if not path:
        return None
    return path.rstrip("/\\") or path[:1]


def last_component(path):
    return path.replace("\\", "/").rsplit("/", 1)[-1] or path


class Projects:
    """The keys of a user's projects, from every (project_name, project_path) pair their
    sessions carry."""

    def __init__(self, pairs):
        self.pairs = set(pairs)
        # A name alone is the folder of that name (or the one a session sent beside it), when
        # exactly one folder fits: two folders called "api" leave a bare "api" on its own.
        fits = {}
        for name, path in self.pairs:
            where = folder(path)
            if where is None:
                continue
            for said in {name, last_component(where)} - {None}:
                fits.setdefault(said, set()).add(where)
        self._folder_of = {name: next(iter(found)) for name, found in fits.items() if len(found) == 1}
        # Once: labels() asks for each key, which over every pair each time was quadratic.
        self._paths = frozenset(folder(path) for _, path in self.pairs if path)

    def key(self, name, path):
        """The project of a session with this name and path (None: it has neither)."""
        return folder(path) or self._folder_of.get(name, name)

    def resolve(self, value):
        """The project a filter's ``value`` means: a key, a folder written either way, or a
        name that stands for one folder."""
        return self.key(value, None) if folder(value) not in self.paths() else folder(value)

    def paths(self):
        return self._paths

    def members(self, key):
        """(the paths, the names of sessions with no path) that make up project ``key``."""
        paths = {path for _, path in self.pairs if path and folder(path) == key}
        names = {name for name, path in self.pairs if not path and name is not None and self.key(name, None) == key}
        return paths, names

    def label(self, key):
        """How project ``key`` reads: a folder's last component, or the name."""
        if key is None:
            return None
        return last_component(key) if key in self.paths() else key

    def labels(self, keys):
        """{key: label} for keys listed together: a label two folders share reads as the path."""
        out = {key: self.label(key) for key in keys}
        seen = {}
        for label in out.values():
            seen[label] = seen.get(label, 0) + 1
        return {key: key if seen[label] > 1 and key is not None else label for key, label in out.items()}


def row_label(name, path):
    """A single session's project as a row shows it (its path is on hover)."""
    where = folder(path)
    return last_component(where) if where else name
