"""Experiment folders on object storage: ``raynas search --out s3://bucket/prefix`` (and ``gs://``).

Ray Tune keeps such an experiment's state and checkpoints at ``<uri>/tune`` itself (its ``storage_path``
is the URI; each trial's process uploads its own checkpoints). Everything else raynas writes (config.yaml,
tables and their parts, logs, plots, the report) is written as always, into a local *working copy*, and
uploaded from it: :meth:`Remote.working_copy` is ``$RAYNAS_REMOTE_CACHE/<scheme>/<bucket>/<prefix>`` (default
``~/.cache/raynas/remote``), so the folder code, its atomic writes and its checks stay as they are, and
:func:`location_of` tells from a folder's path alone whether it is a working copy and of which URI.

:class:`WorkingCopy` moves files between the two. An upload writes the file under a hidden temporary key
(``.<name>.<random>.tmp``) and then moves it onto its key (a server-side copy): an object store shows an
object only once its upload completed, so a key holds a whole file, old or new, and an interrupted upload
leaves at most a temporary key, which nothing reads; a transfer deletes nothing (checkpoints go by the rules
of :mod:`raynas.tune.retention`). A manifest in the working copy (:data:`MANIFEST`) records each file's
size and modification time on both sides as last exchanged, so an upload sends only files changed here and
a download fetches only objects changed there, comparing each side with its own clock. A download gives
each file the object's time (the upload's), which keeps the order the readers rely on (a consolidated table
newer than the parts it holds).

URIs go to pyarrow (``FileSystem.from_uri``), as Ray Tune's do: S3 takes its endpoint from
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (an S3-compatible server) and credentials from the usual
AWS chain, GCS from Google's default credentials. No credential is put into the file system object, which
Tune pickles into the experiment's saved state. Imports pyarrow only when storage is used.
"""

from raynas.remote.location import (CACHE_ENV, SCHEMES, Remote, cache_root, display, is_remote, location_of,
                                    parse, tune_location, uri_of)
from raynas.remote.store import check_bucket, filesystem, holds_files, names, remove_tree, subfolders
from raynas.remote.working_copy import (MANIFEST, NOT_DOWNLOADED, WorkingCopy, driver_running, fetch, local_folder,
                                        new_experiment, publish, refuse_uri, sync_up)

__all__ = ["CACHE_ENV", "MANIFEST", "NOT_DOWNLOADED", "SCHEMES", "Remote", "WorkingCopy", "cache_root",
           "check_bucket", "display", "driver_running", "fetch", "filesystem", "holds_files", "is_remote",
           "local_folder", "location_of", "names", "new_experiment", "parse", "publish", "refuse_uri",
           "remove_tree", "subfolders", "sync_up", "tune_location", "uri_of"]
