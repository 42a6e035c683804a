/* The capture buffer's layout, shared by dxtrack._hotpath (which defines the EventBuffer type
 * and appends to it) and dxtrack._build (which takes whole events out of it).
 *
 * An EventBuffer holds events (see dxtrack/events.py) in a ring of slots, one slot per event,
 * and shows Python the flat deque of six fields per event that the pure-Python path uses:
 * len() counts fields, extend() takes one event, popleft() gives one field. The compiled caller
 * fills a slot without making a tuple, and keeps a float it would have to make -- the capture
 * time, a metric's int value -- as a C double, which is made a float only when it is taken.
 *
 * Every operation runs under the GIL and runs no Python code before the buffer is consistent
 * again; objects that leave the buffer are released last. */
#ifndef DXTRACK_EVENT_BUFFER_H
#define DXTRACK_EVENT_BUFFER_H

#include <Python.h>

#define EVENT_FIELDS 6
#define EVENT_TIME 1  /* the field that may be kept as a double... */
#define EVENT_VALUE 3 /* ... and this one, in a metric event */

typedef struct {
    PyObject *fields[EVENT_FIELDS]; /* owned; NULL at EVENT_TIME/EVENT_VALUE: the double */
    double time;
    double value;
} EventSlot;

typedef struct {
    PyObject_HEAD
    EventSlot *slots;   /* a ring of ``capacity`` slots */
    Py_ssize_t capacity;
    Py_ssize_t head;    /* the oldest event's slot */
    Py_ssize_t count;   /* events held, the head's included */
    int taken;          /* fields of the head event popped already (by popleft) */
} EventBuffer;

#define EVENT_BUFFER_CAPSULE "dxtrack._hotpath._event_buffer_type"

/* Defined in _event_buffer.c, for dxtrack._hotpath (dxtrack._build gets the type from the
 * capsule EVENT_BUFFER_CAPSULE). */
extern PyTypeObject EventBufferType;
EventSlot *event_buffer_push(EventBuffer *self);

/* Fields held, as len() counts them. */
static inline Py_ssize_t
event_buffer_length(EventBuffer *self)
{
    return self->count * EVENT_FIELDS - self->taken;
}

/* A new reference to field ``field`` of ``slot``, the double made a float. */
static inline PyObject *
event_slot_field(EventSlot *slot, int field)
{
    PyObject *object = slot->fields[field];
    if (object != NULL) {
        Py_INCREF(object);
        return object;
    }
    return PyFloat_FromDouble(field == EVENT_TIME ? slot->time : slot->value);
}

/* The head slot is empty now: move on to the next.
 *
 * A ring grown for a backlog is kept once the backlog is gone (at most max_buffer events of
 * 64 bytes): a busy job fills and drains the buffer again and again, and a ring let go and
 * grown again each time would cost fresh pages from the kernel each time. */
static inline void
event_buffer_drop_head(EventBuffer *self)
{
    self->head = self->head + 1 == self->capacity ? 0 : self->head + 1;
    self->count--;
}

/* Release what is left of an oldest event that popleft() took part of (only an exception
 * between its fields can leave one): 1 when there was one, else 0. */
static inline int
event_buffer_drop_cut(EventBuffer *self)
{
    if (self->count == 0 || self->taken == 0) {
        return 0;
    }
    EventSlot slot = self->slots[self->head];
    memset(&self->slots[self->head], 0, sizeof(EventSlot));
    int taken = self->taken;
    self->taken = 0;
    event_buffer_drop_head(self);
    for (int j = taken; j < EVENT_FIELDS; j++) {  /* last: a finalizer may append */
        Py_XDECREF(slot.fields[j]);
    }
    return 1;
}

/* Move the oldest whole event into ``out`` (new references, doubles made floats): 1, or 0
 * when there is none (or part of it was popped already), or -1 with an error set. */
static inline int
event_buffer_pop(EventBuffer *self, PyObject **out)
{
    if (self->count == 0 || self->taken != 0) {
        return 0;
    }
    EventSlot *slot = &self->slots[self->head];
    for (int j = 0; j < EVENT_FIELDS; j++) {
        if (slot->fields[j] == NULL) {
            out[j] = event_slot_field(slot, j);
            if (out[j] == NULL) {
                while (j > 0) {
                    j--;
                    if (slot->fields[j] == NULL) {
                        Py_CLEAR(out[j]);  /* a float made here */
                    }
                }
                return -1;
            }
        }
        else {
            out[j] = slot->fields[j];  /* the slot's reference moves to ``out`` */
        }
    }
    memset(slot, 0, sizeof(*slot));
    event_buffer_drop_head(self);
    return 1;
}

#endif
