/* dxtrack._build: the shipper's record builder, compiled.
 *
 * MetricWriter.build() pops captured events from the flat capture buffer (dxtrack/events.py)
 * and writes the JSON line of each metric straight from a template: the record's keys are
 * fixed and sorted, so only the metadata needs a JSON serialiser (orjson, as in the pure-Python
 * builder), and a metadata dict equal to the previous one (same keys, values of the same plain
 * types) reuses the previous one's JSON. Floats are written as repr() writes them where that
 * is what orjson writes (no exponent), by orjson otherwise.
 *
 * Error lines too, once take_errors() gave it error_lines.ErrorLines' template: the JSON of an
 * error's exception and fingerprint is made in Python at its first occurrence, and kept; every
 * later occurrence (same type, text and frames) is written here around it.
 *
 * The floats of a batch of events are written by one orjson call, and the id is hashed here
 * with xxHash's own code (vendor/xxhash.h), so that a line costs no Python call of its own.
 *
 * Every event it does not take itself -- an error seen for the first time or chained, a name
 * that is not a str, an explicit timestamp, metadata orjson refuses, a line past the size
 * limit -- goes, in order and with its own seq, to the pure-Python builder (the "fallback"), so
 * both give the same bytes: the tests compare them line by line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include "vendor/xxhash.h"  /* xxHash 0.8.2 (BSD 2-Clause): the id, as the xxhash package gives */
#include "_event_buffer.h"

typedef struct {
    PyObject_HEAD
    PyObject *parts[5];   /* bytes: the template around metadata, name, seq, timestamp, value */
    PyObject *defaults;   /* dict: default_metadata */
    PyObject *defaults_json; /* bytes: its JSON, for events without metadata */
    PyObject *dumps;      /* orjson.dumps */
    PyObject *default_;   /* its ``default`` for metadata: dxtrack.jsonsafe.readable */
    PyObject *option;     /* its ``option`` for metadata: dxtrack.jsonsafe.OPTIONS */
    PyObject *kwnames;    /* ("default", "option") */
    PyObject *metric_kind;/* the event kind of metrics ("metric") */
    Py_ssize_t max_line;  /* longer bodies go to the fallback, which shortens them */
    PyObject *last_metadata;      /* the previous event's metadata dict, or NULL */
    PyObject *last_metadata_json; /* its merged JSON */
    PyObject *scrub;      /* Scrubber.metadata, or NULL when scrubbing is off */
    PyObject *known_keys; /* Scrubber.known: key -> whether it names a secret, or NULL */
    uint64_t keep_below;  /* a metric is kept when its random draw is below this */
    int sampling;         /* metric_sample_rate < 1 */
    uint64_t random_state;
    Py_ssize_t sampled_out; /* metric events left out since take_sampled_out() */
    /* error lines (take_errors()): the template of error_lines.ErrorLines, and its dict of the
     * JSON of each error seen, (type, text, frames_key) -> (frames, exception JSON,
     * fingerprint) */
    PyObject *error_kind; /* the event kind of errors ("error"), or NULL: the fallback's */
    PyObject *error_parts[4]; /* bytes around exception, metadata, seq and timestamp */
    PyObject *error_kept;
    PyObject *error_prepare; /* called before a build's first error: forgets stale JSON */
    PyObject *error_admit;   /* admit(fingerprint, event) -> bool (sampling and the rate
                              * limit; it counts what it leaves out), or NULL: every error */
} MetricWriter;

/* xorshift64*: the draw of metric sampling (not for secrets; fast and well spread). */
static uint64_t
next_random(MetricWriter *self)
{
    uint64_t x = self->random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self->random_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static PyObject *fetch_error(void);

/* Clear the error being raised. One that stops the program (a Ctrl-C's KeyboardInterrupt
 * landing in user code the writer ran, a SystemExit...) is first handed to
 * dxtrack.interrupts.keep(), which raises it on the caller's thread once the build is queued
 * (the fallback builds the record meanwhile). */
static void
clear_error(void)
{
    if (PyErr_Occurred() == NULL || PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return;
    }
    PyObject *value = fetch_error();
    static PyObject *keep;
    if (keep == NULL) {
        PyObject *module = PyImport_ImportModule("dxtrack.interrupts");
        keep = module == NULL ? NULL : PyObject_GetAttrString(module, "keep");
        Py_XDECREF(module);
    }
    PyObject *kept = keep == NULL || value == NULL ? NULL : PyObject_CallOneArg(keep, value);
    Py_XDECREF(kept);
    Py_XDECREF(value);
    PyErr_Clear();
}

/* ---- pieces of a line ---------------------------------------------------------------------- */

typedef struct {
    const char *data;
    Py_ssize_t size;
    PyObject *owner;  /* a new reference that keeps data alive, or NULL */
    int quoted;       /* written between double quotes */
    char small[40];
} Piece;

static void
piece_release(Piece *piece)
{
    Py_CLEAR(piece->owner);
}

static int
piece_from_bytes(Piece *piece, PyObject *bytes)  /* steals bytes */
{
    if (bytes == NULL || !PyBytes_Check(bytes)) {
        Py_XDECREF(bytes);
        return 0;
    }
    piece->owner = bytes;
    piece->data = PyBytes_AS_STRING(bytes);
    piece->size = PyBytes_GET_SIZE(bytes);
    return 1;
}

/* A str as a JSON string: copied when nothing in it needs escaping, else by orjson. */
static int
piece_from_str(MetricWriter *self, Piece *piece, PyObject *text)
{
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (utf8 == NULL) {
        return 0;  /* lone surrogates: the fallback copes */
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)utf8[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            return piece_from_bytes(piece, PyObject_CallOneArg(self->dumps, text));
        }
    }
    Py_INCREF(text);
    piece->owner = text;
    piece->data = utf8;
    piece->size = size;
    piece->quoted = 1;
    return 1;
}

/* Merged metadata's JSON as orjson writes it one level down in a record (its depth limit
 * counts from the record): the JSON of ``[metadata]`` without the brackets. */
static PyObject *
metadata_json(MetricWriter *self, PyObject *metadata)
{
    PyObject *list = PyList_New(1);
    if (list == NULL) {
        return NULL;
    }
    Py_INCREF(metadata);
    PyList_SET_ITEM(list, 0, metadata);
    PyObject *args[3] = {list, self->default_, self->option};
    PyObject *json = PyObject_Vectorcall(self->dumps, args, 1, self->kwnames);
    Py_DECREF(list);
    if (json == NULL) {
        return NULL;
    }
    Py_ssize_t size = PyBytes_Check(json) ? PyBytes_GET_SIZE(json) : 0;
    PyObject *inner = size >= 2 ? PyBytes_FromStringAndSize(PyBytes_AS_STRING(json) + 1, size - 2)
                                : NULL;
    Py_DECREF(json);
    return inner;
}

/* Whether two metadata values serialise the same: the same plain type and equal. */
static int
same_plain_value(PyObject *a, PyObject *b)
{
    if (a == b) {
        return a == Py_None || a == Py_True || a == Py_False || PyUnicode_CheckExact(a)
            || PyLong_CheckExact(a) || PyFloat_CheckExact(a);
    }
    if (Py_TYPE(a) != Py_TYPE(b)) {
        return 0;
    }
    if (PyUnicode_CheckExact(a)) {
        return PyUnicode_Compare(a, b) == 0;
    }
    if (PyFloat_CheckExact(a)) {
        double x = PyFloat_AS_DOUBLE(a), y = PyFloat_AS_DOUBLE(b);
        return memcmp(&x, &y, sizeof(double)) == 0;
    }
    if (PyLong_CheckExact(a)) {
        int equal = PyObject_RichCompareBool(a, b, Py_EQ);
        if (equal < 0) {
            clear_error();
            return 0;
        }
        return equal;
    }
    return 0;
}

/* Whether ``metadata`` has the same str keys and plain values as ``last``. */
static int
same_metadata(PyObject *metadata, PyObject *last)
{
    if (metadata == last) {
        /* the caller's fast path shares one copy among calls with equal metadata of immutable
         * scalars only; the writer holds a reference to it, so it is still that dict */
        return 1;
    }
    if (last == NULL || PyDict_GET_SIZE(metadata) != PyDict_GET_SIZE(last)) {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(metadata, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            return 0;
        }
        PyObject *other = PyDict_GetItemWithError(last, key);
        if (other == NULL) {
            clear_error();
            return 0;
        }
        if (!same_plain_value(value, other)) {
            return 0;
        }
    }
    return 1;
}

/* Whether metadata must go through Scrubber.metadata: a key not known to be harmless, or a
 * value that is not a plain scalar (it may nest a secret); -1 with an error set. */
static int
needs_scrub(MetricWriter *self, PyObject *metadata)
{
    if (self->scrub == NULL) {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(metadata, &pos, &key, &value)) {
        if (!(PyUnicode_CheckExact(value) || PyLong_CheckExact(value)
              || PyFloat_CheckExact(value) || PyBool_Check(value) || value == Py_None)) {
            return 1;
        }
        PyObject *secret = PyDict_GetItemWithError(self->known_keys, key);
        if (secret != Py_False) {
            return PyErr_Occurred() ? -1 : 1;
        }
    }
    return 0;
}

/* The merged metadata's JSON for an event's metadata (None or a dict). */
static int
piece_from_metadata(MetricWriter *self, Piece *piece, PyObject *metadata)
{
    if (metadata == Py_None || (PyDict_CheckExact(metadata) && PyDict_GET_SIZE(metadata) == 0)) {
        Py_INCREF(self->defaults_json);
        return piece_from_bytes(piece, self->defaults_json);
    }
    if (!PyDict_CheckExact(metadata)) {
        return 0;
    }
    if (same_metadata(metadata, self->last_metadata)) {
        Py_INCREF(self->last_metadata_json);
        return piece_from_bytes(piece, self->last_metadata_json);
    }
    PyObject *own = metadata;  /* borrowed, or the scrubbed copy (owned) */
    int scrubbed = needs_scrub(self, metadata);
    if (scrubbed < 0) {
        return 0;
    }
    if (scrubbed) {
        own = PyObject_CallOneArg(self->scrub, metadata);
        if (own == NULL || !PyDict_Check(own)) {
            Py_XDECREF(own);
            return 0;
        }
    }
    PyObject *merged = own;
    if (PyDict_GET_SIZE(self->defaults) > 0) {
        merged = PyDict_Copy(self->defaults);
        if (merged == NULL || PyDict_Update(merged, own) < 0) {
            Py_XDECREF(merged);
            if (scrubbed) {
                Py_DECREF(own);
            }
            return 0;
        }
        if (scrubbed) {
            Py_DECREF(own);
        }
    }
    else if (!scrubbed) {
        Py_INCREF(merged);
    }
    PyObject *json = metadata_json(self, merged);
    Py_DECREF(merged);
    if (json == NULL) {
        return 0;
    }
    /* both set before the old ones are released, whose values' finalizers may run code */
    PyObject *old_metadata = self->last_metadata, *old_json = self->last_metadata_json;
    self->last_metadata = Py_NewRef(metadata);
    self->last_metadata_json = Py_NewRef(json);
    Py_XDECREF(old_metadata);
    Py_XDECREF(old_json);
    return piece_from_bytes(piece, json);
}

/* ---- one line -------------------------------------------------------------------------- */

static const char ID_HEAD[] = ",\"id\":\"";
#define ID_HEAD_SIZE (sizeof(ID_HEAD) - 1)
#define DIGEST_SIZE 32

/* Whether the writer takes this event itself (else the fallback builds it). */
static int
writable(MetricWriter *self, PyObject **event)
{
    return event[0] == self->metric_kind && event[5] == Py_None
        && PyUnicode_CheckExact(event[2]) && PyFloat_CheckExact(event[3])
        && PyFloat_CheckExact(event[1]);
}

static const char HEX[] = "0123456789abcdef";

/* Write ``seq`` into ``number`` (its small buffer). */
static void
piece_from_seq(Piece *number, long long seq)
{
    char *digits = number->small + sizeof(number->small);
    unsigned long long rest = (unsigned long long)seq;
    do {
        *--digits = (char)('0' + rest % 10);
        rest /= 10;
    } while (rest);
    number->data = digits;
    number->size = number->small + sizeof(number->small) - digits;
}

/* ``parts[0] order[0] parts[1] order[1] ...}`` and its id, or NULL (no error set) when the body
 * is past the size limit: the fallback then shortens it. */
static PyObject *
write_line(MetricWriter *self, PyObject **parts, Piece **order, int count)
{
    Py_ssize_t body = 1;  /* the closing brace */
    for (int i = 0; i < count; i++) {
        body += PyBytes_GET_SIZE(parts[i]) + order[i]->size + 2 * order[i]->quoted;
    }
    if (body > self->max_line) {
        return NULL;
    }
    PyObject *line = PyBytes_FromStringAndSize(NULL, body - 1 + ID_HEAD_SIZE + DIGEST_SIZE + 3);
    if (line == NULL) {
        clear_error();
        return NULL;
    }
    char *start = PyBytes_AS_STRING(line), *out = start;
    for (int i = 0; i < count; i++) {
        Py_ssize_t size = PyBytes_GET_SIZE(parts[i]);
        memcpy(out, PyBytes_AS_STRING(parts[i]), size);
        out += size;
        if (order[i]->quoted) {
            *out++ = '"';
        }
        memcpy(out, order[i]->data, order[i]->size);
        out += order[i]->size;
        if (order[i]->quoted) {
            *out++ = '"';
        }
    }
    *out = '}';
    XXH128_canonical_t digest;
    XXH128_canonicalFromHash(&digest, XXH3_128bits(start, (size_t)body));
    memcpy(out, ID_HEAD, ID_HEAD_SIZE);
    out += ID_HEAD_SIZE;
    for (int i = 0; i < 16; i++) {
        *out++ = HEX[digest.digest[i] >> 4];
        *out++ = HEX[digest.digest[i] & 15];
    }
    memcpy(out, "\"}\n", 3);
    return line;
}

/* The line of one metric event, with its time and value already written as orjson writes them,
 * or NULL (no error set) when the fallback must build it. */
static PyObject *
metric_line(MetricWriter *self, PyObject **event, long long seq, Piece *time, Piece *value)
{
    Piece pieces[3];
    memset(pieces, 0, sizeof(pieces));
    Piece *metadata = &pieces[0], *name = &pieces[1], *number = &pieces[2];
    PyObject *line = NULL;
    if (piece_from_metadata(self, metadata, event[4]) && piece_from_str(self, name, event[2])) {
        piece_from_seq(number, seq);
        Piece *order[5] = {metadata, name, number, time, value};
        line = write_line(self, self->parts, order, 5);
    }
    for (int i = 0; i < 3; i++) {
        piece_release(&pieces[i]);
    }
    clear_error();
    return line;
}

/* ---- error lines ----------------------------------------------------------------------------- */

/* Whether an error event may be written here: an error() call's plain event (frames as a flat
 * tuple, its text a str), when take_errors() was called. Whether its JSON is known is looked up
 * later (known_exception). */
static int
error_writable(MetricWriter *self, PyObject **event)
{
    return self->error_kind != NULL && event[0] == self->error_kind && event[2] != Py_None
        && PyFloat_CheckExact(event[1]) && PyUnicode_CheckExact(event[3])
        && PyTuple_CheckExact(event[4]);
}

static int frames_equal(PyObject *a, PyObject *b);
static PyObject *frames_hash(PyObject *frames);

/* ``(frames, JSON of "exception" and "fingerprint", fingerprint)`` of an error event when
 * ErrorLines has made it for the same type, text and frames (a borrowed reference), else NULL
 * with no error set: the fallback makes it, and keeps it for the next occurrences. */
static PyObject *
known_exception(MetricWriter *self, PyObject **event)
{
    PyObject *hash = frames_hash(event[4]);
    PyObject *key = hash == NULL ? NULL : PyTuple_Pack(3, event[2], event[3], hash);
    Py_XDECREF(hash);
    PyObject *found = key == NULL ? NULL : PyDict_GetItemWithError(self->error_kept, key);
    Py_XDECREF(key);
    if (found == NULL || !PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 3
        || !PyBytes_CheckExact(PyTuple_GET_ITEM(found, 1))
        || !PyUnicode_CheckExact(PyTuple_GET_ITEM(found, 2))
        || frames_equal(PyTuple_GET_ITEM(found, 0), event[4]) != 1) {
        clear_error();
        return NULL;
    }
    return found;
}

/* The line of one error event whose exception JSON is known, or NULL (no error set). */
static PyObject *
error_line(MetricWriter *self, PyObject **event, PyObject *exception, long long seq,
           Piece *time)
{
    Piece pieces[3];
    memset(pieces, 0, sizeof(pieces));
    Piece *exception_json = &pieces[0], *metadata = &pieces[1], *number = &pieces[2];
    PyObject *line = NULL;
    if (piece_from_bytes(exception_json, Py_NewRef(exception))
        && piece_from_metadata(self, metadata, event[5])) {
        piece_from_seq(number, seq);
        Piece *order[4] = {exception_json, metadata, number, time};
        line = write_line(self, self->error_parts, order, 4);
    }
    for (int i = 0; i < 3; i++) {
        piece_release(&pieces[i]);
    }
    clear_error();
    return line;
}

/* The JSON of the batch's floats (times and values, in order), split at the commas into
 * ``pieces``; 0 (no error set) when that fails. ``json`` keeps the text alive. */
static int
format_floats(MetricWriter *self, PyObject *floats, Py_ssize_t count, Piece *pieces,
              PyObject **json)
{
    *json = PyObject_CallOneArg(self->dumps, floats);
    if (*json == NULL || !PyBytes_Check(*json)) {
        Py_CLEAR(*json);
        clear_error();
        return 0;
    }
    const char *text = PyBytes_AS_STRING(*json), *end = text + PyBytes_GET_SIZE(*json) - 1;
    const char *at = text + 1;  /* after '[' */
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *comma = i + 1 < count ? memchr(at, ',', (size_t)(end - at)) : end;
        if (comma == NULL) {
            Py_CLEAR(*json);
            return 0;
        }
        pieces[i].data = at;
        pieces[i].size = comma - at;
        at = comma + 1;
    }
    return 1;
}

/* The exception being raised, with its traceback (cleared): a new reference, or NULL. */
static PyObject *
fetch_error(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL && traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
#endif
}

/* The exception being raised (cleared), or a RuntimeError when none is: a new reference. */
static PyObject *
take_error(void)
{
    PyObject *value = fetch_error();
    if (value == NULL) {
        value = PyObject_CallFunction(PyExc_RuntimeError, "s", "the record could not be built");
    }
    return value;
}

/* ---- Sequence: the producer's seq ----------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    long long next;
} Sequence;

static PyTypeObject SequenceType;

static PyObject *
sequence_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"start", NULL};
    long long start = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|L:Sequence", keywords, &start)) {
        return NULL;
    }
    Sequence *self = (Sequence *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->next = start;
    }
    return (PyObject *)self;
}

static PyObject *
sequence_iternext(Sequence *self)
{
    return PyLong_FromLongLong(self->next++);
}

static PyTypeObject SequenceType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dxtrack._build.Sequence",
    .tp_doc = PyDoc_STR("Sequence(start=1): numbers from start, as itertools.count; the writer "
                        "takes them without making an int."),
    .tp_basicsize = sizeof(Sequence),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = sequence_new,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)sequence_iternext,
};

/* Whether sampling and the rate limit give an error event whose fingerprint is known a record:
 * 1 or 0 (admit() counted it), -1 (no error set) when admit() failed, or -2 with the error still
 * set when what it raised is no Exception (KeyboardInterrupt...): the event's failure then, as
 * the fallback's are, not a second admit() through the fallback. */
static int
admit_error(MetricWriter *self, PyObject **event, PyObject *fingerprint)
{
    PyObject *tuple = PyTuple_New(6);
    if (tuple == NULL) {
        clear_error();
        return -1;
    }
    for (int j = 0; j < 6; j++) {
        PyTuple_SET_ITEM(tuple, j, Py_NewRef(event[j]));
    }
    PyObject *verdict = PyObject_CallFunctionObjArgs(self->error_admit, fingerprint, tuple, NULL);
    Py_DECREF(tuple);
    int admitted = verdict == NULL ? -1 : PyObject_IsTrue(verdict);
    Py_XDECREF(verdict);
    if (admitted < 0 && PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
        return -2;
    }
    clear_error();
    return admitted;
}

/* ---- build() ------------------------------------------------------------------------------ */

PyDoc_STRVAR(build_doc,
"build(buffer, count, next_seq, fallback, metric_lines, other_lines, failures)\n--\n\n"
"Pop ``count`` events from ``buffer`` (an EventBuffer or a flat deque), leaving out metrics\n"
"by sampling. The line of a metric, numbered by ``next_seq()`` (``next(next_seq)`` for an\n"
"iterator), is appended to ``metric_lines``; the ``(kind, line)`` of an error whose JSON is\n"
"known (take_errors()), or of any other event built by ``fallback(event, seq, next_seq)``\n"
"(``seq`` None: it numbers the event itself if it keeps it, else returns None), to\n"
"``other_lines``; and what the fallback raised to ``failures``, with a RuntimeError for what\n"
"is left of an event that popleft() took part of (it is released).");

#define BATCH 256

/* Build the events of one batch (their references are released here). */
static int
build_batch(MetricWriter *self, PyObject *(*events)[6], Py_ssize_t count, PyObject *counter,
            PyObject *next_seq, PyObject *fallback, PyObject *metric_lines,
            PyObject *other_lines, PyObject *failures, int *errors_ready)
{
    if (self->sampling) {  /* left out before anything: no seq, no work */
        for (Py_ssize_t i = 0; i < count; i++) {
            if (events[i][0] == self->metric_kind && next_random(self) >= self->keep_below) {
                for (int j = 0; j < 6; j++) {
                    Py_CLEAR(events[i][j]);
                }
                self->sampled_out++;
            }
        }
    }
    Sequence *sequence = counter != NULL && Py_IS_TYPE(counter, &SequenceType)
        ? (Sequence *)counter : NULL;
    Piece *numbers = PyMem_Calloc(2 * BATCH, sizeof(Piece));
    PyObject *floats = PyList_New(0);
    Py_ssize_t written = 0;
    for (Py_ssize_t i = 0; floats != NULL && i < count; i++) {
        if (events[i][0] == NULL) {
            continue;
        }
        if (writable(self, events[i])) {
            PyList_Append(floats, events[i][1]);
            PyList_Append(floats, events[i][3]);
            written += 2;
        }
        else if (error_writable(self, events[i])) {
            PyList_Append(floats, events[i][1]);
            written += 1;
        }
    }
    PyObject *json = NULL;
    int formatted = numbers != NULL && floats != NULL && written > 0 && !PyErr_Occurred()
        && format_floats(self, floats, written, numbers, &json);
    Py_XDECREF(floats);
    clear_error();
    int ok = 1;
    Py_ssize_t number = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject **event = events[i];
        if (event[0] == NULL) {  /* sampled out */
            continue;
        }
        /* A metric, or an error whose JSON is known, that the writer takes has its number
         * now; any other event is numbered by the fallback, and only if it is kept (sampling,
         * the rate limit). */
        int metric = writable(self, event), error = !metric && error_writable(self, event);
        if (error && *errors_ready == 0) {  /* the build's first error: check the sources */
            PyObject *done = PyObject_CallNoArgs(self->error_prepare);
            *errors_ready = done == NULL ? -1 : 1;
            Py_XDECREF(done);
            clear_error();  /* it failed: this build leaves its errors to the fallback */
        }
        /* an error whose JSON ErrorLines made before (a new reference: the fallback may change
         * the dict that holds it) */
        PyObject *known = error && *errors_ready > 0
            ? Py_XNewRef(known_exception(self, event)) : NULL;
        PyObject *exception = known == NULL ? NULL : PyTuple_GET_ITEM(known, 1);
        if (known != NULL && self->error_admit != NULL) {
            int admitted = admit_error(self, event, PyTuple_GET_ITEM(known, 2));
            /* 0: left out (and counted) by sampling or the rate limit; -2: KeyboardInterrupt...,
             * this event's failure, as from the fallback (admit() may have counted it already) */
            if (admitted == 0 || admitted < -1) {
                Py_DECREF(known);
                number += 1;
                for (int j = 0; j < 6; j++) {
                    Py_CLEAR(event[j]);
                }
                if (admitted < -1) {
                    PyObject *failure = take_error();
                    if (failure == NULL || PyList_Append(failures, failure) < 0) {
                        ok = 0;
                    }
                    Py_XDECREF(failure);
                }
                continue;
            }
            if (admitted < 0) {  /* admit() failed: the fallback decides, as without a writer */
                Py_CLEAR(known);
                exception = NULL;
            }
        }
        int takes = metric || exception != NULL;
        PyObject *seq_object = NULL;
        long long seq = -1;
        if (takes && sequence != NULL) {  /* no int made: the fallback gets one if needed */
            seq = sequence->next++;
        }
        else if (takes) {
            seq_object = counter != NULL ? PyIter_Next(counter) : PyObject_CallNoArgs(next_seq);
            seq = seq_object == NULL ? -1 : PyLong_AsLongLong(seq_object);
        }
        PyObject *line = NULL, *pair = NULL;
        if (metric) {
            if (formatted && seq >= 0) {
                line = metric_line(self, event, seq, &numbers[number], &numbers[number + 1]);
            }
            number += 2;
        }
        else if (error) {
            if (exception != NULL && formatted && seq >= 0) {
                line = error_line(self, event, exception, seq, &numbers[number]);
            }
            number += 1;
        }
        Py_XDECREF(known);
        if (line != NULL && error) {
            pair = PyTuple_Pack(2, self->error_kind, line);
            Py_SETREF(line, NULL);
            if (pair != NULL) {
                /* a str and bytes: in no cycle. Thousands waiting for their batch would be
                 * promoted into the old generation, whose growth sets off full collections */
                PyObject_GC_UnTrack(pair);
            }
            clear_error();  /* no pair (out of memory): the fallback tries */
        }
        if (line == NULL && pair == NULL && takes && seq >= 0 && seq_object == NULL) {
            seq_object = PyLong_FromLongLong(seq);
            if (seq_object == NULL) {
                seq = -1;  /* out of memory: reported as this event's failure below */
            }
        }
        if (line == NULL && pair == NULL && (!takes || seq >= 0)) {
            PyObject *tuple = PyTuple_New(6);
            if (tuple != NULL) {
                for (int j = 0; j < 6; j++) {
                    Py_INCREF(event[j]);
                    PyTuple_SET_ITEM(tuple, j, event[j]);
                }
                pair = PyObject_CallFunctionObjArgs(fallback, tuple, takes ? seq_object : Py_None,
                                                   next_seq, NULL);
                Py_DECREF(tuple);
            }
        }
        Py_XDECREF(seq_object);
        for (int j = 0; j < 6; j++) {
            Py_CLEAR(event[j]);
        }
        int appended;
        if (line != NULL) {
            appended = PyList_Append(metric_lines, line);
            Py_DECREF(line);
        }
        else if (pair == Py_None) {  /* left out by sampling or the rate limit */
            appended = 0;
            Py_DECREF(pair);
        }
        else if (pair != NULL) {
            appended = PyList_Append(other_lines, pair);
            Py_DECREF(pair);
        }
        else {
            PyObject *failure = take_error();
            appended = failure == NULL ? -1 : PyList_Append(failures, failure);
            Py_XDECREF(failure);
        }
        if (appended < 0) {
            ok = 0;  /* out of memory: release the rest of the batch, then stop */
        }
    }
    Py_XDECREF(json);
    PyMem_Free(numbers);
    return ok;
}

static PyTypeObject *event_buffer_type;  /* dxtrack._hotpath.EventBuffer, or NULL */

/* Whether ``buffer`` is an EventBuffer, whose events are taken out directly. */
static int
is_event_buffer(PyObject *buffer)
{
    static int looked;
    if (!looked) {
        looked = 1;
        event_buffer_type = PyCapsule_Import(EVENT_BUFFER_CAPSULE, 0);
        clear_error();  /* no compiled caller: buffers are deques */
    }
    return event_buffer_type != NULL && Py_IS_TYPE(buffer, event_buffer_type);
}

/* Take the next event out of ``buffer`` into ``event``: 1, 0 when there is none, -1 with an
 * error set (the event stays). ``popleft`` is a deque's (NULL for an EventBuffer). */
static int
take_event(PyObject *buffer, PyObject *popleft, PyObject **event)
{
    if (popleft == NULL) {
        return event_buffer_pop((EventBuffer *)buffer, event);
    }
    for (int j = 0; j < 6; j++) {
        event[j] = PyObject_CallNoArgs(popleft);
        if (event[j] == NULL) {  /* the buffer is shorter than it said */
            while (j > 0) {
                Py_CLEAR(event[--j]);
            }
            clear_error();
            return 0;
        }
    }
    return 1;
}

static PyObject *
writer_build(MetricWriter *self, PyObject *args)
{
    PyObject *buffer, *next_seq, *fallback, *metric_lines, *other_lines, *failures;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "OnOOO!O!O!:build", &buffer, &count, &next_seq, &fallback,
                          &PyList_Type, &metric_lines, &PyList_Type, &other_lines,
                          &PyList_Type, &failures)) {
        return NULL;
    }
    /* an iterator (itertools.count) is read directly; the fallback gets its __next__ */
    PyObject *counter = PyIter_Check(next_seq) ? next_seq : NULL;
    next_seq = counter != NULL ? PyObject_GetAttrString(counter, "__next__") : Py_NewRef(next_seq);
    PyObject *popleft = next_seq == NULL || is_event_buffer(buffer)
        ? NULL : PyObject_GetAttrString(buffer, "popleft");
    PyObject *(*events)[6] = next_seq == NULL || PyErr_Occurred()
        ? NULL : PyMem_Calloc(BATCH, sizeof(*events));
    if (events == NULL) {
        Py_XDECREF(next_seq);
        Py_XDECREF(popleft);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    int ok = 1, short_buffer = 0, errors_ready = 0;
    if (popleft == NULL && event_buffer_drop_cut((EventBuffer *)buffer)) {
        PyObject *failure = PyObject_CallFunction(
            PyExc_RuntimeError, "s", "an event was cut: part of it was taken out of the buffer");
        ok = failure != NULL && PyList_Append(failures, failure) == 0;
        Py_XDECREF(failure);
    }
    for (Py_ssize_t done = 0; ok && !short_buffer && done < count;) {
        Py_ssize_t batch = 0;
        for (; batch < BATCH && done + batch < count; batch++) {
            if (take_event(buffer, popleft, events[batch]) <= 0) {
                /* none left, or no memory for a float: the rest waits for the next build */
                clear_error();
                short_buffer = 1;
                break;
            }
        }
        ok = build_batch(self, events, batch, counter, next_seq, fallback, metric_lines,
                         other_lines, failures, &errors_ready);
        done += batch;
    }
    PyMem_Free(events);
    Py_XDECREF(popleft);
    Py_DECREF(next_seq);
    if (!ok) {
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

/* ---- frame lists (dxtrack/tracebacks.py) ---------------------------------------------------- */

PyDoc_STRVAR(frames_key_doc,
"frames_key(frames)\n--\n\n"
"A hash of the identity of each code object and of each offset of a flat frame list.");

static PyObject *
frames_hash(PyObject *frames)
{
    if (!PyTuple_CheckExact(frames)) {
        PyErr_SetString(PyExc_TypeError, "frames must be a tuple");
        return NULL;
    }
    Py_uhash_t hash = 0x27d4eb2f165667c5ULL;
    Py_ssize_t size = PyTuple_GET_SIZE(frames);
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = PyTuple_GET_ITEM(frames, i);
        Py_uhash_t part;
        if (i % 2 == 0) {
            part = (Py_uhash_t)(uintptr_t)item;
        }
        else {
            Py_hash_t value = PyObject_Hash(item);
            if (value == -1) {
                return NULL;
            }
            part = (Py_uhash_t)value;
        }
        hash = (hash ^ part) * 0x100000001b3ULL;
        hash ^= hash >> 29;
    }
    return PyLong_FromSsize_t((Py_ssize_t)(hash >> 1));
}

static PyObject *
frames_key(PyObject *module, PyObject *frames)
{
    return frames_hash(frames);
}

PyDoc_STRVAR(same_frames_doc,
"same_frames(a, b)\n--\n\n"
"Whether two flat frame lists hold the same code objects (by identity) at the same offsets.");

/* 1 when two flat frame tuples hold the same code objects and equal offsets, 0 when not, -1
 * with an error set. */
static int
frames_equal(PyObject *a, PyObject *b)
{
    if (!PyTuple_CheckExact(a) || !PyTuple_CheckExact(b)) {
        PyErr_SetString(PyExc_TypeError, "same_frames(a, b) takes two tuples");
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(a);
    if (size != PyTuple_GET_SIZE(b)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *x = PyTuple_GET_ITEM(a, i), *y = PyTuple_GET_ITEM(b, i);
        if (x == y) {
            continue;
        }
        if (i % 2 == 0) {
            return 0;
        }
        int equal = PyObject_RichCompareBool(x, y, Py_EQ);
        if (equal <= 0) {
            return equal;
        }
    }
    return 1;
}

static PyObject *
same_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "same_frames(a, b) takes two tuples");
        return NULL;
    }
    int equal = frames_equal(args[0], args[1]);
    if (equal < 0) {
        return NULL;
    }
    return PyBool_FromLong(equal);
}

/* ---- packing (dxtrack/delivery/packing.py) ------------------------------------------------ */

PyDoc_STRVAR(join_groups_doc,
"join_groups(lines, limit)\n--\n\n"
"Runs of consecutive lines of at most ``limit`` bytes (a longer line alone), each joined:\n"
"a list of ``(data, count)``. What packing._groups and bytes.join give, in one pass.");

static PyObject *
join_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "join_groups(lines, limit) takes a list and an int");
        return NULL;
    }
    int overflow = 0;
    long long wanted = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (wanted == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t limit = overflow > 0 || wanted > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX
        : overflow < 0 ? -1 : (Py_ssize_t)wanted;
    /* The lines, held here before anything is allocated that may set off a collection (whose
     * callbacks and finalizers may change the list). */
    Py_ssize_t total = PyList_GET_SIZE(args[0]);
    PyObject **lines = PyMem_Malloc((total > 0 ? total : 1) * sizeof(PyObject *));
    if (lines == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < total; i++) {
        lines[i] = Py_NewRef(PyList_GET_ITEM(args[0], i));
    }
    PyObject *out = PyList_New(0);
    for (Py_ssize_t start = 0; out != NULL && start < total;) {
        Py_ssize_t end = start, size = 0;
        for (; end < total; end++) {
            if (!PyBytes_CheckExact(lines[end])) {
                PyErr_SetString(PyExc_TypeError, "join_groups: lines must be bytes");
                Py_CLEAR(out);
                break;
            }
            Py_ssize_t length = PyBytes_GET_SIZE(lines[end]);
            if (end > start && size + length > limit) {
                break;
            }
            size += length;
        }
        PyObject *data = out == NULL ? NULL : PyBytes_FromStringAndSize(NULL, size);
        if (data == NULL) {
            Py_CLEAR(out);
            break;
        }
        char *to = PyBytes_AS_STRING(data);
        for (Py_ssize_t i = start; i < end; i++) {
            memcpy(to, PyBytes_AS_STRING(lines[i]), PyBytes_GET_SIZE(lines[i]));
            to += PyBytes_GET_SIZE(lines[i]);
        }
        PyObject *group = Py_BuildValue("(Nn)", data, end - start);
        if (group == NULL || PyList_Append(out, group) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(group);
        start = end;
    }
    for (Py_ssize_t i = 0; i < total; i++) {
        Py_DECREF(lines[i]);
    }
    PyMem_Free(lines);
    return out;
}

static PyMethodDef module_functions[] = {
    {"join_groups", (PyCFunction)(void (*)(void))join_groups, METH_FASTCALL, join_groups_doc},
    {"frames_key", (PyCFunction)frames_key, METH_O, frames_key_doc},
    {"same_frames", (PyCFunction)(void (*)(void))same_frames, METH_FASTCALL, same_frames_doc},
    {NULL, NULL, 0, NULL},
};

/* ---- the type ----------------------------------------------------------------------------- */

/* 1 when ``parts`` (a tuple) holds ``count`` bytes objects, else 0 with an error set. */
static int
check_parts(PyObject *parts, Py_ssize_t count)
{
    if (PyTuple_GET_SIZE(parts) != count) {
        PyErr_Format(PyExc_ValueError, "parts must be %zd bytes objects", count);
        return 0;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(parts, i))) {
            PyErr_SetString(PyExc_TypeError, "parts must be bytes");
            return 0;
        }
    }
    return 1;
}

static PyObject *
writer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"parts", "defaults", "dumps", "default", "option",
                               "metric_kind", "max_line", "sample_rate", "scrub", "known_keys",
                               "seed", NULL};
    PyObject *parts, *defaults, *dumps, *default_, *option, *kind;
    PyObject *scrub = Py_None, *known_keys = Py_None;
    Py_ssize_t max_line;
    double sample_rate = 1.0;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!OOOUn|dOOK:MetricWriter", keywords,
                                     &PyTuple_Type, &parts, &PyDict_Type, &defaults, &dumps,
                                     &default_, &option, &kind, &max_line, &sample_rate,
                                     &scrub, &known_keys, &seed)) {
        return NULL;
    }
    if (!(sample_rate >= 0.0 && sample_rate <= 1.0)) {
        PyErr_SetString(PyExc_ValueError, "sample_rate must be from 0 to 1");
        return NULL;
    }
    if ((scrub == Py_None) != (known_keys == Py_None)
        || (known_keys != Py_None && !PyDict_Check(known_keys))) {
        PyErr_SetString(PyExc_TypeError, "scrub and known_keys (a dict) go together");
        return NULL;
    }
    if (!check_parts(parts, 5)) {
        return NULL;
    }
    MetricWriter *self = (MetricWriter *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    for (int i = 0; i < 5; i++) {
        self->parts[i] = Py_NewRef(PyTuple_GET_ITEM(parts, i));
    }
    self->defaults = Py_NewRef(defaults);
    self->dumps = Py_NewRef(dumps);
    self->default_ = Py_NewRef(default_);
    self->option = Py_NewRef(option);
    /* interned: orjson tells its keywords apart by identity */
    PyObject *names[2] = {PyUnicode_InternFromString("default"),
                          PyUnicode_InternFromString("option")};
    self->kwnames = names[0] && names[1] ? PyTuple_Pack(2, names[0], names[1]) : NULL;
    Py_XDECREF(names[0]);
    Py_XDECREF(names[1]);
    self->metric_kind = Py_NewRef(kind);
    self->max_line = max_line;
    self->scrub = scrub == Py_None ? NULL : Py_NewRef(scrub);
    self->known_keys = known_keys == Py_None ? NULL : Py_NewRef(known_keys);
    self->sampling = sample_rate < 1.0;
    /* 2^64 * rate, computed in two halves: a double can't hold 2^64 - 1 exactly */
    self->keep_below = (uint64_t)(sample_rate * 9223372036854775808.0) * 2;
    self->random_state = (seed ^ ((uint64_t)(uintptr_t)self * 0x9E3779B97F4A7C15ULL)) | 1;
    self->defaults_json = self->kwnames == NULL
        ? NULL : metadata_json(self, defaults);
    if (self->defaults_json == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
writer_traverse(MetricWriter *self, visitproc visit, void *arg)
{
    for (int i = 0; i < 5; i++) {
        Py_VISIT(self->parts[i]);
    }
    Py_VISIT(self->defaults);
    Py_VISIT(self->defaults_json);
    Py_VISIT(self->dumps);
    Py_VISIT(self->kwnames);
    Py_VISIT(self->option);
    Py_VISIT(self->default_);
    Py_VISIT(self->metric_kind);
    Py_VISIT(self->last_metadata);
    Py_VISIT(self->last_metadata_json);
    Py_VISIT(self->scrub);
    Py_VISIT(self->known_keys);
    Py_VISIT(self->error_kind);
    for (int i = 0; i < 4; i++) {
        Py_VISIT(self->error_parts[i]);
    }
    Py_VISIT(self->error_kept);
    Py_VISIT(self->error_prepare);
    Py_VISIT(self->error_admit);
    return 0;
}

static int
writer_clear(MetricWriter *self)
{
    for (int i = 0; i < 5; i++) {
        Py_CLEAR(self->parts[i]);
    }
    Py_CLEAR(self->defaults);
    Py_CLEAR(self->defaults_json);
    Py_CLEAR(self->dumps);
    Py_CLEAR(self->kwnames);
    Py_CLEAR(self->option);
    Py_CLEAR(self->default_);
    Py_CLEAR(self->metric_kind);
    Py_CLEAR(self->last_metadata);
    Py_CLEAR(self->last_metadata_json);
    Py_CLEAR(self->scrub);
    Py_CLEAR(self->known_keys);
    Py_CLEAR(self->error_kind);
    for (int i = 0; i < 4; i++) {
        Py_CLEAR(self->error_parts[i]);
    }
    Py_CLEAR(self->error_kept);
    Py_CLEAR(self->error_prepare);
    Py_CLEAR(self->error_admit);
    return 0;
}

static void
writer_dealloc(MetricWriter *self)
{
    PyObject_GC_UnTrack(self);
    writer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(take_sampled_out_doc,
"take_sampled_out()\n--\n\n"
"How many metric events sampling left out since the last call.");

static PyObject *
writer_take_sampled_out(MetricWriter *self, PyObject *unused)
{
    Py_ssize_t count = self->sampled_out;
    self->sampled_out = 0;
    return PyLong_FromSsize_t(count);
}

PyDoc_STRVAR(take_errors_doc,
"take_errors(kind, parts, kept, prepare, admit=None)\n--\n\n"
"Write error lines too: those of events of ``kind`` whose exception JSON is in ``kept``\n"
"(``error_lines.ErrorLines``'s dict), around the 4 bytes ``parts`` of its template, once\n"
"``prepare()`` was called in the build (it forgets JSON gone stale). ``admit(fingerprint,\n"
"event)`` applies error sampling and the rate limit (it counts what it leaves out): an event\n"
"it refuses gets no line and no seq. None: every error gets a line.");

static PyObject *
writer_take_errors(MetricWriter *self, PyObject *args)
{
    PyObject *kind, *parts, *kept, *prepare, *admit = Py_None;
    if (!PyArg_ParseTuple(args, "UO!O!O|O:take_errors", &kind, &PyTuple_Type, &parts,
                          &PyDict_Type, &kept, &prepare, &admit)) {
        return NULL;
    }
    if (!PyCallable_Check(prepare) || (admit != Py_None && !PyCallable_Check(admit))) {
        PyErr_SetString(PyExc_TypeError, "prepare and admit must be callable");
        return NULL;
    }
    if (!check_parts(parts, 4)) {
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        Py_XSETREF(self->error_parts[i], Py_NewRef(PyTuple_GET_ITEM(parts, i)));
    }
    Py_XSETREF(self->error_kept, Py_NewRef(kept));
    Py_XSETREF(self->error_prepare, Py_NewRef(prepare));
    Py_XSETREF(self->error_admit, admit == Py_None ? NULL : Py_NewRef(admit));
    Py_XSETREF(self->error_kind, Py_NewRef(kind));
    Py_RETURN_NONE;
}

static PyMethodDef writer_methods[] = {
    {"take_errors", (PyCFunction)writer_take_errors, METH_VARARGS, take_errors_doc},
    {"build", (PyCFunction)writer_build, METH_VARARGS, build_doc},
    {"take_sampled_out", (PyCFunction)writer_take_sampled_out, METH_NOARGS,
     take_sampled_out_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject MetricWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dxtrack._build.MetricWriter",
    .tp_doc = "Writes the JSON lines of metric events from a template; see _build.c.",
    .tp_basicsize = sizeof(MetricWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = writer_new,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_traverse = (traverseproc)writer_traverse,
    .tp_clear = (inquiry)writer_clear,
    .tp_methods = writer_methods,
};

static struct PyModuleDef build_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dxtrack._build",
    .m_doc = "The compiled record builder for metric events.",
    .m_size = -1,
    .m_methods = module_functions,
};

PyMODINIT_FUNC
PyInit__build(void)
{
    if (PyType_Ready(&MetricWriterType) < 0 || PyType_Ready(&SequenceType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&build_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&MetricWriterType);
    if (PyModule_AddObject(module, "MetricWriter", (PyObject *)&MetricWriterType) < 0) {
        Py_DECREF(&MetricWriterType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&SequenceType);
    if (PyModule_AddObject(module, "Sequence", (PyObject *)&SequenceType) < 0) {
        Py_DECREF(&SequenceType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
