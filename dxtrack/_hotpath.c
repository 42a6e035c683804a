/* dxtrack._hotpath: the caller's side of metric() and error(), compiled.
 *
 * An Entry wraps the pure-Python method of the same name (its "fallback") and takes the common
 * case itself: a float or int value, metadata that is None or a plain dict, no timestamp, and
 * room below the buffer's wake-up mark. It then appends the same event the Python method would
 * (see dxtrack/events.py): into a slot of an EventBuffer (_event_buffer.c), or with one
 * deque.extend. Anything else -- odd arguments, a full buffer, an exception that is not plain (a
 * cause, notes, a group...), an unconfigured client -- goes to the fallback, unchanged, so both
 * paths give the same records and raise the same errors.
 *
 * Thread safety: under the GIL, nothing between reading the buffer and appending to it runs
 * Python code, so a concurrent route() (reconfiguration) can't slip in between.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifdef Py_GIL_DISABLED
/* The fast path relies on the GIL (see above); without it the build fails, and dxtrack is
 * installed in pure Python, whose deque operations are thread-safe either way. */
#error "dxtrack._hotpath needs the GIL"
#endif
#include <frameobject.h>
#include <structmember.h>
#include <time.h>

#include "_event_buffer.h"

#define SNAPSHOT_ITEMS 8 /* metadata items kept beside the snapshot, for a one-walk comparison */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;  /* the pure-Python method: same signature, every check */
    PyObject *kind;      /* the event's first field: "metric" or "error" */
    PyObject *clock;     /* the namespace (a dict) that holds the clock ... */
    PyObject *clock_name;/* ... under this name; looked up per call so freezegun can patch it */
    PyObject *buffer;    /* the EventBuffer (or deque) to append to, or NULL: the fallback */
    PyObject *extend;    /* a deque's extend; NULL for an EventBuffer, filled directly */
    Py_ssize_t limit;    /* take the fast path while len(buffer) < limit */
    PyObject *snapshot;  /* the last metadata copy, shared by calls with equal metadata */
    Py_ssize_t snapshot_size;  /* its items in snapshot_items (borrowed), or -1: too many */
    PyObject *snapshot_items[2 * SNAPSHOT_ITEMS];
} Entry;

static PyObject *str_metric_name, *str_value, *str_metadata, *str_timestamp;
static PyObject *str_recorded; /* capture.RECORDED_ATTRIBUTE, set on each recorded exception */
static PyObject *str_notes;    /* "__notes__" */

static PyObject *
call_fallback(Entry *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static int
name_is(PyObject *name, PyObject *wanted)
{
    return name == wanted || (PyUnicode_Check(name) && PyUnicode_Compare(name, wanted) == 0);
}

/* Sort positional and keyword arguments into slots; 0 when the call is unusual (too many
 * arguments, an unknown or repeated keyword): the fallback then reports it as Python would. */
static int
bind(PyObject *const *args, size_t nargsf, PyObject *kwnames, PyObject **names, int count,
     PyObject **slots)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs > count) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        slots[i] = args[i];
    }
    if (kwnames == NULL) {
        return 1;
    }
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int found = 0, i = 0;
        while (i < count && key != names[i]) {  /* the call site's names are interned: most */
            i++;                                  /* match by identity, without comparing */
        }
        for (i = i < count ? i : 0; i < count; i++) {
            if (name_is(key, names[i])) {
                if (slots[i] != NULL) {
                    return 0;
                }
                slots[i] = args[nargs + k];
                found = 1;
                break;
            }
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

/* Whether ``value`` and ``kept`` are equal immutable scalars of one exact type -- str, int,
 * float (bit for bit), bool or None -- so that a snapshot holding ``kept`` stands for ``value``.
 * Anything else (a list, a dict, an object) is never the same: the builders reuse a shared
 * snapshot's JSON, and a nested value may change between two calls. Runs no Python code. */
static int
same_value(PyObject *value, PyObject *kept)
{
    if (Py_TYPE(value) != Py_TYPE(kept)) {
        return 0;
    }
    if (value == Py_None || PyBool_Check(value)) {
        return value == kept;
    }
    if (PyUnicode_CheckExact(value)) {
        return value == kept || PyUnicode_Compare(value, kept) == 0;
    }
    if (PyLong_CheckExact(value)) {
        int equal = value == kept ? 1 : PyObject_RichCompareBool(value, kept, Py_EQ);
        if (equal < 0) {
            PyErr_Clear();
        }
        return equal == 1;
    }
    if (PyFloat_CheckExact(value)) {
        double a = PyFloat_AS_DOUBLE(value), b = PyFloat_AS_DOUBLE(kept);
        return memcmp(&a, &b, sizeof(double)) == 0;
    }
    return 0;
}

/* Whether two metadata keys are the same str. */
static int
same_key(PyObject *key, PyObject *kept)
{
    return key == kept
        || (PyUnicode_CheckExact(key) && PyUnicode_CheckExact(kept)
            && PyUnicode_Compare(key, kept) == 0);
}

/* Whether ``metadata`` holds, in the same order, the same str keys and plain values as the
 * entry's snapshot (see same_value): compared with the snapshot's items kept beside it, or,
 * for a large one, walking both dicts. */
static int
same_as_snapshot(Entry *self, PyObject *metadata)
{
    PyObject *snapshot = self->snapshot;
    if (snapshot == NULL || PyDict_GET_SIZE(metadata) != PyDict_GET_SIZE(snapshot)) {
        return 0;
    }
    Py_ssize_t pos = 0, kept_pos = 0, i = 0;
    PyObject *key, *value, *kept_key, *kept_value;
    while (PyDict_Next(metadata, &pos, &key, &value)) {
        if (self->snapshot_size >= 0) {
            if (i >= self->snapshot_size) {
                return 0;
            }
            kept_key = self->snapshot_items[2 * i];
            kept_value = self->snapshot_items[2 * i + 1];
            i++;
        }
        else if (!PyDict_Next(snapshot, &kept_pos, &kept_key, &kept_value)) {
            return 0;
        }
        if (!same_key(key, kept_key) || !same_value(value, kept_value)) {
            return 0;
        }
    }
    return 1;
}

/* Make ``copy`` the snapshot (a reference stolen), its items kept beside it when few. */
static void
set_snapshot(Entry *self, PyObject *copy)
{
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    if (PyDict_GET_SIZE(copy) <= SNAPSHOT_ITEMS) {
        while (PyDict_Next(copy, &pos, &key, &value)) {
            self->snapshot_items[2 * i] = key;  /* borrowed: the snapshot never changes */
            self->snapshot_items[2 * i + 1] = value;
            i++;
        }
        self->snapshot_size = i;
    }
    else {
        self->snapshot_size = -1;
    }
    Py_XSETREF(self->snapshot, copy);
}

/* A new reference to a copy of plain-dict metadata, to Py_None for none, or NULL (no error
 * set) when the fallback must handle it.
 *
 * A job usually passes equal metadata again and again ({"route": ..., "status": 200}), so a
 * copy equal to the last one is not made again: the events share the last copy, which nothing
 * ever changes (the builder reads it; before_send gets a copy of its own). That spares the
 * allocation here and its release on the builder's thread, and the builder knows the shared
 * copy by its identity, without comparing it again. */
static PyObject *
copy_metadata(Entry *self, PyObject *metadata)
{
    if (metadata == NULL || metadata == Py_None) {
        Py_INCREF(Py_None);
        return Py_None;
    }
    if (!PyDict_CheckExact(metadata)) {
        return NULL;
    }
    if (same_as_snapshot(self, metadata)) {
        Py_INCREF(self->snapshot);
        return self->snapshot;
    }
    PyObject *copy = PyDict_Copy(metadata);
    if (copy == NULL) {
        PyErr_Clear();
        return NULL;
    }
    /* Nothing but the buffer refers to the copy, so it can be in no reference cycle: the
     * garbage collector need not track it. Thousands of them waiting in the buffer would
     * otherwise be walked by every collection, and promoted into the old generation, whose
     * growth triggers full collections of the host's whole heap. */
    PyObject_GC_UnTrack(copy);
    Py_INCREF(copy);
    set_snapshot(self, copy);
    return copy;
}

static PyObject *time_time;  /* time.time itself, read directly when it is the clock */

/* The clock's reading: 1 with ``*reading`` a new reference, or 1 with ``*reading`` NULL and
 * ``*raw`` set (time.time read directly, no float made), or 0 with no error set. */
/* Whether the error being raised stops the program (a Ctrl-C's KeyboardInterrupt landing in
 * user code run here, a SystemExit...): it is then raised by the call, as without dxtrack,
 * never cleared and left to the fallback. */
static int
interrupting(void)
{
    return PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception);
}

static int
now(Entry *self, double *raw, PyObject **reading)
{
    *reading = NULL;
    PyObject *clock = PyDict_GetItemWithError(self->clock, self->clock_name);
    if (clock == NULL) {
        PyErr_Clear();
        return 0;
    }
    struct timespec ts;
    if (clock == time_time && clock_gettime(CLOCK_REALTIME, &ts) == 0) {
        /* what time.time() computes from the same reading */
        long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        *raw = ns % 1000000000LL == 0 ? (double)(ns / 1000000000LL) : (double)ns / 1e9;
        return 1;
    }
    *reading = PyObject_CallNoArgs(clock);
    if (*reading == NULL) {
        if (!interrupting()) {
            PyErr_Clear();
        }
        return 0;
    }
    return 1;
}

/* Append an event whose fields 1 to 5 are ``fields[1..5]`` (references stolen), a NULL time
 * (fields[1]) or value (fields[3]) standing for ``time`` or ``value``, if the buffer has room.
 * Returns 1 when appended, 0 when the fallback must take the call; steals either way.
 *
 * From the length check to the append, no Python code runs (see the top of this file). An
 * EventBuffer's slot is filled without making an object; a deque's tuple is made first, since
 * its allocation may collect garbage, which runs finalizers. */
static int
append_event(Entry *self, PyObject **fields, double time, double value)
{
    int appended = 0;
    Py_INCREF(self->kind);
    fields[0] = self->kind;
    if (self->buffer != NULL && self->extend == NULL) {  /* an EventBuffer: fill a slot */
        EventBuffer *buffer = (EventBuffer *)self->buffer;
        EventSlot *slot = event_buffer_length(buffer) < self->limit
            ? event_buffer_push(buffer) : NULL;
        if (slot != NULL) {
            memcpy(slot->fields, fields, sizeof(slot->fields));
            slot->time = time;
            slot->value = value;
            return 1;
        }
        PyErr_Clear();
    }
    else if (self->buffer != NULL) {  /* a deque: one extend of the six fields */
        int boxed = 1;
        static const int numbers[2] = {EVENT_TIME, EVENT_VALUE};
        for (int i = 0; i < 2; i++) {
            int j = numbers[i];
            if (fields[j] == NULL) {
                fields[j] = PyFloat_FromDouble(j == EVENT_TIME ? time : value);
                boxed = boxed && fields[j] != NULL;
            }
        }
        PyObject *event = boxed ? PyTuple_New(EVENT_FIELDS) : NULL;
        if (event != NULL) {
            for (int j = 0; j < EVENT_FIELDS; j++) {
                PyTuple_SET_ITEM(event, j, fields[j]);
                fields[j] = NULL;
            }
            /* Read only now: making the tuple may have run a garbage collection, whose
             * finalizers may have routed this entry elsewhere (configure(), set_scope()). */
            PyObject *buffer = self->buffer, *extend = self->extend;
            Py_ssize_t size = buffer != NULL && extend != NULL ? PyObject_Length(buffer) : -1;
            if (size >= 0 && size < self->limit) {
                PyObject *result = PyObject_CallOneArg(extend, event);
                appended = result != NULL;
                Py_XDECREF(result);
            }
            Py_DECREF(event);
        }
        PyErr_Clear();
    }
    for (int j = 0; j < EVENT_FIELDS; j++) {
        Py_XDECREF(fields[j]);
    }
    return appended;
}

static PyObject *names_metric[4];
static PyObject *names_error[1];

/* metric(metric_name, value, metadata=None, timestamp=None) */
static PyObject *
metric_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Entry *self = (Entry *)callable;
    PyObject *slots[4] = {NULL, NULL, NULL, NULL};
    if (self->buffer == NULL || !bind(args, nargsf, kwnames, names_metric, 4, slots)
        || slots[0] == NULL || slots[1] == NULL
        || (slots[3] != NULL && slots[3] != Py_None)) {
        return call_fallback(self, args, nargsf, kwnames);
    }
    PyObject *value = slots[1];
    double number = 0.0;
    if (PyFloat_CheckExact(value)) {
        Py_INCREF(value);
    }
    else if (PyLong_CheckExact(value)) {  /* kept as the double it is recorded as */
        number = PyLong_AsDouble(value);
        if (number == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return call_fallback(self, args, nargsf, kwnames);
        }
        value = NULL;
    }
    else {
        return call_fallback(self, args, nargsf, kwnames);
    }
    PyObject *metadata = copy_metadata(self, slots[2]);
    double time = 0.0;
    PyObject *reading = NULL;
    if (metadata == NULL || !now(self, &time, &reading)) {
        Py_XDECREF(value);
        Py_XDECREF(metadata);
        return interrupting() ? NULL : call_fallback(self, args, nargsf, kwnames);
    }
    Py_INCREF(slots[0]);
    Py_INCREF(Py_None);
    PyObject *fields[EVENT_FIELDS] = {NULL, reading, slots[0], value, metadata, Py_None};
    if (!append_event(self, fields, time, number)) {
        return call_fallback(self, args, nargsf, kwnames);
    }
    Py_RETURN_NONE;
}

static PyObject *
handled_exception(void)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *exc = PyErr_GetHandledException();
    if (exc == Py_None) {
        Py_DECREF(exc);
        return NULL;
    }
    return exc;
#else
    PyObject *type, *value, *tb;
    PyErr_GetExcInfo(&type, &value, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value == Py_None) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
#endif
}

/* The flat (code, offset, code, offset, ...) tuple of tracebacks.frames(), or NULL. */
static PyObject *
frames(PyObject *tb_object)
{
    Py_ssize_t count = 0;
    for (PyObject *tb = tb_object; tb != NULL && tb != Py_None;
         tb = (PyObject *)((PyTracebackObject *)tb)->tb_next) {
        if (!PyTraceBack_Check(tb)) {
            return NULL;
        }
        count++;
    }
    PyObject *out = PyTuple_New(2 * count);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t i = 0;
    for (PyTracebackObject *tb = (PyTracebackObject *)tb_object; i < 2 * count;
         tb = tb->tb_next) {
        PyObject *code = (PyObject *)PyFrame_GetCode(tb->tb_frame);
        PyObject *lasti = PyLong_FromLong(tb->tb_lasti);
        if (code == NULL || lasti == NULL) {
            Py_XDECREF(code);
            Py_XDECREF(lasti);
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i++, code);
        PyTuple_SET_ITEM(out, i++, lasti);
    }
    PyObject_GC_UnTrack(out);  /* code objects and numbers: no cycle goes through it */
    return out;
}

/* Whether the exception surely prints as its frames and one last line (tracebacks.plain()):
 * no cause or context, no notes, not a group, a syntax error or an exception whose last line
 * may suggest a name. The others go to the fallback, which decides and snapshots them. */
static int
plain(PyObject *exc)
{
    PyBaseExceptionObject *base = (PyBaseExceptionObject *)exc;
    if (base->cause != NULL || (base->context != NULL && !base->suppress_context)) {
        return 0;
    }
    if (base->dict != NULL) {
        int notes = PyDict_Contains(base->dict, str_notes);
        if (notes != 0) {
            PyErr_Clear();  /* notes, or an error looking: the fallback decides */
            return 0;
        }
    }
    if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_SyntaxError)) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030B0000
    if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_BaseExceptionGroup)) {
        return 0;
    }
#else
    PyObject *mro = Py_TYPE(exc)->tp_mro;  /* the exceptiongroup backport's groups */
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        if (strcmp(((PyTypeObject *)PyTuple_GET_ITEM(mro, i))->tp_name,
                   "BaseExceptionGroup") == 0) {
            return 0;
        }
    }
#endif
    /* a suggestion ("Did you mean") depends on the Python and its traceback module: the
     * fallback decides (tracebacks.plain) */
    if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_NameError)
        || PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_AttributeError)
        || PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_ImportError)) {
        return 0;
    }
    return 1;
}

/* error(metadata=None) */
static PyObject *
error_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Entry *self = (Entry *)callable;
    PyObject *slots[1] = {NULL};
    if (self->buffer == NULL || !bind(args, nargsf, kwnames, names_error, 1, slots)) {
        return call_fallback(self, args, nargsf, kwnames);
    }
    PyObject *exc = handled_exception();
    if (exc == NULL) {
        PyErr_Clear();
        return call_fallback(self, args, nargsf, kwnames);
    }
    int chained = !plain(exc);
    PyObject *metadata = chained ? NULL : copy_metadata(self, slots[0]);  /* else the fallback */
    if (metadata == NULL) {
        Py_DECREF(exc);
        return call_fallback(self, args, nargsf, kwnames);
    }
    PyObject *text = PyObject_Str(exc);  /* may run a user's __str__; the fallback copes if it
                                            raises */
    PyObject *tb = text == NULL ? NULL : PyException_GetTraceback(exc);
    PyObject *trace = text == NULL ? NULL : frames(tb);
    Py_XDECREF(tb);
    double time = 0.0;
    PyObject *reading = NULL;
    if (text == NULL || trace == NULL || !now(self, &time, &reading)) {
        int stop = interrupting();
        if (!stop) {
            PyErr_Clear();
        }
        Py_XDECREF(text);
        Py_XDECREF(trace);
        Py_DECREF(metadata);
        Py_DECREF(exc);
        return stop ? NULL : call_fallback(self, args, nargsf, kwnames);
    }
    PyObject *exc_type = (PyObject *)Py_TYPE(exc);
    Py_INCREF(exc_type);
    PyObject *fields[EVENT_FIELDS] = {NULL, reading, exc_type, text, trace, metadata};
    if (!append_event(self, fields, time, 0.0)) {
        Py_DECREF(exc);
        return call_fallback(self, args, nargsf, kwnames);
    }
    if (PyObject_SetAttr(exc, str_recorded, Py_True) < 0) {
        PyErr_Clear();  /* an exception that takes no attributes stays unmarked */
    }
    Py_DECREF(exc);
    Py_RETURN_NONE;
}

/* ---- the Entry type ------------------------------------------------------------------- */

static PyObject *
entry_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"fallback", "kind", "clock_namespace", "clock_name", NULL};
    PyObject *fallback, *kind, *clock, *clock_name;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OUO!U:Entry", keywords, &fallback, &kind,
                                     &PyDict_Type, &clock, &clock_name)) {
        return NULL;
    }
    vectorcallfunc call;
    if (PyUnicode_CompareWithASCIIString(kind, "metric") == 0) {
        call = metric_vectorcall;
    }
    else if (PyUnicode_CompareWithASCIIString(kind, "error") == 0) {
        call = error_vectorcall;
    }
    else {
        PyErr_SetString(PyExc_ValueError, "kind must be 'metric' or 'error'");
        return NULL;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return NULL;
    }
    Entry *self = (Entry *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = call;
    Py_INCREF(fallback);
    self->fallback = fallback;
    Py_INCREF(kind);
    self->kind = kind;
    Py_INCREF(clock);
    self->clock = clock;
    Py_INCREF(clock_name);
    self->clock_name = clock_name;
    self->limit = 0;
    return (PyObject *)self;
}

static int
entry_traverse(Entry *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    Py_VISIT(self->kind);
    Py_VISIT(self->clock);
    Py_VISIT(self->clock_name);
    Py_VISIT(self->buffer);
    Py_VISIT(self->extend);
    Py_VISIT(self->snapshot);
    return 0;
}

static int
entry_clear(Entry *self)
{
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->kind);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->clock_name);
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->extend);
    Py_CLEAR(self->snapshot);
    return 0;
}

static void
entry_dealloc(Entry *self)
{
    PyObject_GC_UnTrack(self);
    entry_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(route_doc,
"route(buffer, limit)\n--\n\n"
"Append to ``buffer`` (an EventBuffer, or a deque) while its length is below ``limit``;\n"
"``route(None, 0)`` sends every call to the fallback.");

static PyObject *
entry_route(Entry *self, PyObject *args)
{
    PyObject *buffer;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "On:route", &buffer, &limit)) {
        return NULL;
    }
    PyObject *extend = NULL;
    if (buffer == Py_None) {
        buffer = NULL;
    }
    else if (Py_IS_TYPE(buffer, &EventBufferType)) {
        Py_INCREF(buffer);
    }
    else {
        extend = PyObject_GetAttrString(buffer, "extend");
        if (extend == NULL) {
            return NULL;
        }
        Py_INCREF(buffer);
    }
    PyObject *old_buffer = self->buffer, *old_extend = self->extend;
    self->buffer = buffer;
    self->extend = extend;
    self->limit = limit;
    Py_XDECREF(old_buffer);
    Py_XDECREF(old_extend);
    Py_RETURN_NONE;
}

static PyObject *
entry_get_wrapped(Entry *self, void *closure)
{
    Py_INCREF(self->fallback);
    return self->fallback;
}

static PyObject *
entry_get_fallback_attr(Entry *self, void *closure)
{
    return PyObject_GetAttrString(self->fallback, (const char *)closure);
}

static PyObject *
entry_repr(Entry *self)
{
    return PyUnicode_FromFormat("<dxtrack %U (compiled fast path) of %R>", self->kind,
                                self->fallback);
}

static PyMethodDef entry_methods[] = {
    {"route", (PyCFunction)entry_route, METH_VARARGS, route_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef entry_getset[] = {
    {"__wrapped__", (getter)entry_get_wrapped, NULL, "The pure-Python method.", NULL},
    {"__doc__", (getter)entry_get_fallback_attr, NULL, NULL, "__doc__"},
    {"__name__", (getter)entry_get_fallback_attr, NULL, NULL, "__name__"},
    {"__qualname__", (getter)entry_get_fallback_attr, NULL, NULL, "__qualname__"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef entry_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Entry, vectorcall), READONLY, NULL},
    {"limit", T_PYSSIZET, offsetof(Entry, limit), READONLY, "The current fast-path limit."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject EntryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dxtrack._hotpath.Entry",
    .tp_basicsize = sizeof(Entry),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = entry_new,
    .tp_dealloc = (destructor)entry_dealloc,
    .tp_traverse = (traverseproc)entry_traverse,
    .tp_clear = (inquiry)entry_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Entry, vectorcall),
    .tp_methods = entry_methods,
    .tp_getset = entry_getset,
    .tp_members = entry_members,
    .tp_repr = (reprfunc)entry_repr,
};

static struct PyModuleDef hotpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dxtrack._hotpath",
    .m_doc = "The compiled caller's side of dxtrack.metric() and dxtrack.error().",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__hotpath(void)
{
    if (PyType_Ready(&EntryType) < 0 || PyType_Ready(&EventBufferType) < 0) {
        return NULL;
    }
    str_metric_name = PyUnicode_InternFromString("metric_name");
    str_value = PyUnicode_InternFromString("value");
    str_metadata = PyUnicode_InternFromString("metadata");
    str_timestamp = PyUnicode_InternFromString("timestamp");
    str_recorded = PyUnicode_InternFromString("__dxtrack_recorded__");
    str_notes = PyUnicode_InternFromString("__notes__");
    if (!str_metric_name || !str_value || !str_metadata || !str_timestamp || !str_recorded
        || !str_notes) {
        return NULL;
    }
    names_metric[0] = str_metric_name;
    names_metric[1] = str_value;
    names_metric[2] = str_metadata;
    names_metric[3] = str_timestamp;
    names_error[0] = str_metadata;
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) {
        return NULL;
    }
    time_time = PyObject_GetAttrString(time_module, "time");
    Py_DECREF(time_module);
    if (time_time == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&hotpath_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&EntryType);
    if (PyModule_AddObject(module, "Entry", (PyObject *)&EntryType) < 0) {
        Py_DECREF(&EntryType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&EventBufferType);
    if (PyModule_AddObject(module, "EventBuffer", (PyObject *)&EventBufferType) < 0) {
        Py_DECREF(&EventBufferType);
        Py_DECREF(module);
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(&EventBufferType, EVENT_BUFFER_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(module, "_event_buffer_type", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
