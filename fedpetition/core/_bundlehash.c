/*
 * The verifier's hash loop, compiled: split one entry bundle (spec §6.4), hash each
 * entry as an RFC 9162 leaf and reduce the leaf hashes to their tile's root.
 *
 * fedpetition.core.bundlehash does the same in Python and decides what is an error:
 * this module only answers None when a bundle does not split cleanly, and the Python
 * code then finds and words the error. The SHA-256 is OpenSSL's (libcrypto, the library
 * Python's hashlib uses); what is written here is the loop around it, which in Python
 * costs about four times the hashing itself (docs/adr/0008-compiled-hash-loop.md).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#define TILE_WIDTH 256
#define HASH_SIZE 32

static EVP_MD *sha256; /* fetched once, when the module is imported */

/* SHA-256(prefix || data[0..size)); ctx is reused from one hash to the next. */
static int
prefixed_hash(EVP_MD_CTX *ctx, unsigned char prefix, const unsigned char *data, size_t size,
              unsigned char *out)
{
    return EVP_DigestInit_ex2(ctx, sha256, NULL)
        && EVP_DigestUpdate(ctx, &prefix, 1)
        && EVP_DigestUpdate(ctx, data, size)
        && EVP_DigestFinal_ex(ctx, out, NULL);
}

/*
 * Split, hash and reduce; 1 on success, 0 if the bundle does not split into exactly
 * `count` entries or OpenSSL failed. Runs without the interpreter's lock.
 */
static int
hash_entries(const unsigned char *data, size_t total, Py_ssize_t count, int64_t *sizes,
             unsigned char *leaves, unsigned char *root)
{
    unsigned char level[TILE_WIDTH * HASH_SIZE];
    size_t pos = 0;
    int ok = 1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return 0;
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        if (total - pos < 2) {
            ok = 0;
            break;
        }
        size_t size = ((size_t)data[pos] << 8) | data[pos + 1];
        pos += 2;
        if (total - pos < size) {
            ok = 0;
            break;
        }
        sizes[i] = (int64_t)size;
        ok = prefixed_hash(ctx, 0x00, data + pos, size, leaves + HASH_SIZE * i);
        pos += size;
    }
    ok = ok && pos == total;
    /* RFC 9162 §2.1.1, level by level: pair neighbours, promote an unpaired last node. */
    Py_ssize_t width = count;
    if (ok)
        memcpy(level, leaves, HASH_SIZE * (size_t)count);
    while (ok && width > 1) {
        Py_ssize_t next = 0;
        for (Py_ssize_t j = 0; ok && j + 1 < width; j += 2, next++)
            ok = prefixed_hash(ctx, 0x01, level + HASH_SIZE * j, 2 * HASH_SIZE,
                               level + HASH_SIZE * next);
        if (width & 1) {
            memmove(level + HASH_SIZE * next, level + HASH_SIZE * (width - 1), HASH_SIZE);
            next++;
        }
        width = next;
    }
    if (ok)
        memcpy(root, level, HASH_SIZE);
    EVP_MD_CTX_free(ctx);
    return ok;
}

PyDoc_STRVAR(hash_bundle_doc,
"hash_bundle(data, count) -> (sizes, leaves, root) or None\n\n"
"Split an entry bundle into exactly count (1..256) entries; sizes holds each entry's\n"
"length as a native int64, leaves their RFC 9162 leaf hashes end to end, root the\n"
"Merkle tree hash of those leaves. None if the bundle does not split cleanly.");

static PyObject *
hash_bundle(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer data;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "y*n:hash_bundle", &data, &count))
        return NULL;
    if (count < 1 || count > TILE_WIDTH) {
        PyBuffer_Release(&data);
        PyErr_Format(PyExc_ValueError, "an entry bundle holds 1..%d entries, not %zd",
                     TILE_WIDTH, count);
        return NULL;
    }
    PyObject *sizes = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    PyObject *leaves = PyBytes_FromStringAndSize(NULL, count * HASH_SIZE);
    if (sizes == NULL || leaves == NULL) {
        Py_XDECREF(sizes);
        Py_XDECREF(leaves);
        PyBuffer_Release(&data);
        return NULL;
    }
    unsigned char root[HASH_SIZE];
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = hash_entries(data.buf, (size_t)data.len, count, (int64_t *)PyBytes_AS_STRING(sizes),
                      (unsigned char *)PyBytes_AS_STRING(leaves), root);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (!ok) {
        Py_DECREF(sizes);
        Py_DECREF(leaves);
        Py_RETURN_NONE;
    }
    return Py_BuildValue("NNy#", sizes, leaves, (const char *)root, (Py_ssize_t)HASH_SIZE);
}

static PyMethodDef methods[] = {
    {"hash_bundle", hash_bundle, METH_VARARGS, hash_bundle_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_bundlehash",
    .m_doc = "The verifier's split-and-hash loop over entry bundles, compiled.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__bundlehash(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256 == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL offers no SHA256");
        return NULL;
    }
    return PyModule_Create(&module);
}
