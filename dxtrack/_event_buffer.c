/* dxtrack._hotpath.EventBuffer: the capture buffer (see _event_buffer.h). Part of the
 * dxtrack._hotpath extension. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_event_buffer.h"

#define FIRST_CAPACITY 64

/* A slot for one more event at the tail (zeroed, counted), or NULL with MemoryError set. */
EventSlot *
event_buffer_push(EventBuffer *self)
{
    if (self->count == self->capacity) {
        Py_ssize_t capacity = self->capacity ? self->capacity * 2 : FIRST_CAPACITY;
        if (capacity > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(EventSlot)) {
            PyErr_NoMemory();
            return NULL;
        }
        EventSlot *slots = PyMem_Malloc((size_t)capacity * sizeof(EventSlot));
        if (slots == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        for (Py_ssize_t i = 0; i < self->count; i++) {  /* oldest first, from slot 0 */
            slots[i] = self->slots[(self->head + i) % self->capacity];
        }
        PyMem_Free(self->slots);
        self->slots = slots;
        self->capacity = capacity;
        self->head = 0;
    }
    Py_ssize_t tail = self->head + self->count;
    EventSlot *slot = &self->slots[tail < self->capacity ? tail : tail - self->capacity];
    memset(slot, 0, sizeof(*slot));
    self->count++;
    return slot;
}

/* Empty the buffer; the objects it held are released after it is empty (a finalizer they run
 * may append to it again). */
static void
release_all(EventBuffer *self)
{
    EventSlot *slots = self->slots;
    Py_ssize_t capacity = self->capacity, head = self->head, count = self->count;
    int taken = self->taken;
    self->slots = NULL;
    self->capacity = self->head = self->count = 0;
    self->taken = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        EventSlot *slot = &slots[(head + i) % capacity];
        for (int j = i == 0 ? taken : 0; j < EVENT_FIELDS; j++) {
            Py_XDECREF(slot->fields[j]);
        }
    }
    PyMem_Free(slots);
}

static PyObject *
buffer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) || PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "EventBuffer() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);  /* zeroed: empty, no ring yet */
}

static int
buffer_traverse(EventBuffer *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->count; i++) {
        EventSlot *slot = &self->slots[(self->head + i) % self->capacity];
        for (int j = i == 0 ? self->taken : 0; j < EVENT_FIELDS; j++) {
            Py_VISIT(slot->fields[j]);
        }
    }
    return 0;
}

static int
buffer_clear(EventBuffer *self)
{
    release_all(self);
    return 0;
}

static void
buffer_dealloc(EventBuffer *self)
{
    PyObject_GC_UnTrack(self);
    release_all(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
buffer_length(EventBuffer *self)
{
    return event_buffer_length(self);
}

static PyObject *
buffer_item(EventBuffer *self, Py_ssize_t index)
{
    if (index < 0 || index >= event_buffer_length(self)) {
        PyErr_SetString(PyExc_IndexError, "EventBuffer index out of range");
        return NULL;
    }
    Py_ssize_t field = self->taken + index;
    EventSlot *slot = &self->slots[(self->head + field / EVENT_FIELDS) % self->capacity];
    return event_slot_field(slot, (int)(field % EVENT_FIELDS));
}

PyDoc_STRVAR(extend_doc,
"extend(event)\n--\n\n"
"Append one event: a sequence of its six fields.");

static PyObject *
buffer_extend(EventBuffer *self, PyObject *event)
{
    PyObject *fields = PySequence_Fast(event, "extend() takes one event: a sequence of fields");
    if (fields == NULL) {
        return NULL;
    }
    if (PySequence_Fast_GET_SIZE(fields) != EVENT_FIELDS) {
        Py_DECREF(fields);
        PyErr_Format(PyExc_ValueError, "extend() takes one event of %d fields", EVENT_FIELDS);
        return NULL;
    }
    EventSlot *slot = event_buffer_push(self);
    if (slot != NULL) {
        PyObject **items = PySequence_Fast_ITEMS(fields);
        for (int j = 0; j < EVENT_FIELDS; j++) {
            Py_INCREF(items[j]);
            slot->fields[j] = items[j];
        }
    }
    Py_DECREF(fields);
    if (slot == NULL) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(popleft_doc,
"popleft()\n--\n\n"
"Remove and return the oldest field (IndexError when empty).");

static PyObject *
buffer_popleft(EventBuffer *self, PyObject *unused)
{
    if (self->count == 0) {
        PyErr_SetString(PyExc_IndexError, "pop from an empty EventBuffer");
        return NULL;
    }
    EventSlot *slot = &self->slots[self->head];
    int field = self->taken;
    PyObject *out = slot->fields[field];
    if (out == NULL) {
        out = event_slot_field(slot, field);
        if (out == NULL) {
            return NULL;
        }
    }
    slot->fields[field] = NULL;  /* its reference is returned */
    if (++self->taken == EVENT_FIELDS) {
        self->taken = 0;
        event_buffer_drop_head(self);
    }
    return out;
}

PyDoc_STRVAR(pop_event_doc,
"pop_event()\n--\n\n"
"Remove and return the oldest event as a tuple of its fields, in one step (IndexError when\n"
"empty). Of an event that popleft() took part of, the fields left.");

static PyObject *
buffer_pop_event(EventBuffer *self, PyObject *unused)
{
    int first = self->taken;
    /* made before anything is taken out: its allocation may run finalizers */
    PyObject *event = PyTuple_New(EVENT_FIELDS - first);
    if (event == NULL) {
        return NULL;
    }
    if (self->count == 0 || self->taken != first) {  /* emptied or taken from meanwhile */
        Py_DECREF(event);
        PyErr_SetString(PyExc_IndexError, "pop from an empty EventBuffer");
        return NULL;
    }
    if (first == 0) {
        PyObject *fields[EVENT_FIELDS];
        if (event_buffer_pop(self, fields) <= 0) {
            Py_DECREF(event);
            return NULL;
        }
        for (int j = 0; j < EVENT_FIELDS; j++) {
            PyTuple_SET_ITEM(event, j, fields[j]);
        }
        return event;
    }
    for (int j = first; j < EVENT_FIELDS; j++) {  /* what is left of a cut event */
        PyObject *field = buffer_popleft(self, NULL);
        if (field == NULL) {
            Py_DECREF(event);
            return NULL;
        }
        PyTuple_SET_ITEM(event, j - first, field);
    }
    return event;
}

PyDoc_STRVAR(clear_doc,
"clear()\n--\n\n"
"Remove every event.");

static PyObject *
buffer_clear_method(EventBuffer *self, PyObject *unused)
{
    release_all(self);
    Py_RETURN_NONE;
}

static PyObject *
buffer_repr(EventBuffer *self)
{
    return PyUnicode_FromFormat("<dxtrack EventBuffer: %zd events>", self->count);
}

static PyMethodDef buffer_methods[] = {
    {"extend", (PyCFunction)buffer_extend, METH_O, extend_doc},
    {"popleft", (PyCFunction)buffer_popleft, METH_NOARGS, popleft_doc},
    {"pop_event", (PyCFunction)buffer_pop_event, METH_NOARGS, pop_event_doc},
    {"clear", (PyCFunction)buffer_clear_method, METH_NOARGS, clear_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods buffer_as_sequence = {
    .sq_length = (lenfunc)buffer_length,
    .sq_item = (ssizeargfunc)buffer_item,
};

PyTypeObject EventBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dxtrack._hotpath.EventBuffer",
    .tp_doc = PyDoc_STR("The capture buffer: events in slots, shown as a flat deque of fields."),
    .tp_basicsize = sizeof(EventBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = buffer_new,
    .tp_dealloc = (destructor)buffer_dealloc,
    .tp_traverse = (traverseproc)buffer_traverse,
    .tp_clear = (inquiry)buffer_clear,
    .tp_methods = buffer_methods,
    .tp_as_sequence = &buffer_as_sequence,
    .tp_repr = (reprfunc)buffer_repr,
};
