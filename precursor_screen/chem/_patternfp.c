/*
 * RDKit's pattern fingerprint (Chem.PatternFingerprint, tautomerFingerprints=False) of a
 * molecule given as the SMILES RDKit wrote for it, computed without RDKit: the same bits,
 * about 20 times faster. Used by precursor_screen/chem/fastpattern.py, which checks it against
 * RDKit on start and falls back to RDKit for anything this file does not read.
 *
 * What RDKit computes (Code/GraphMol/Fingerprints/PatternFingerprints.cpp, RDKit 2020-2026):
 * for each of 13 SMARTS patterns p = 1..13, every match of p in the molecule, not uniquified
 * (all injective maps of pattern atoms onto molecule atoms taking each pattern bond onto a
 * molecule bond that satisfies the bond's query, each atom onto an atom satisfying its query),
 * sets
 *   - a "count" bit: mIdx starts at p + atoms(p) + bonds(p) and is hash-combined with 0xBEEF
 *     once per match; after the k-th match bit (mIdx % fpSize) is set;
 *   - a "path" bit: bitId starts at p, is hash-combined with the atomic number of the molecule
 *     atom of each pattern atom (pattern atom order), then with the bond type of the molecule
 *     bond of each pattern bond (pattern bond order; 12 for an aromatic bond); bit
 *     (bitId % fpSize) is set.
 * hash_combine is Boost's, on RDKit's 32-bit hash type (RDGeneral/hash/hash.hpp):
 *   seed ^= v + 0x9e3779b9 + (seed << 6) + (seed >> 2).
 * The match order does not matter: the count bits depend on the number of matches only.
 *
 * The SMILES reader knows the subset RDKit writes for a sanitized molecule: organic-subset and
 * bracket atoms (isotope, element, chirality, H count, charge, atom class), bonds - = # $ : / \,
 * ring closures (digits, %nn, %(nnn)), branches and dots. An implicit bond is aromatic between
 * two aromatic atoms, else single (RDKit's SMILES parser and writer agree on this). Anything
 * else (a dummy atom '*', a dative bond, / or \ between two aromatic atoms, an unknown element,
 * more atoms or neighbours than the tables hold) returns None, and the caller asks RDKit.
 *
 * Rings: the patterns' [R] and @ ask whether an atom or bond is in one of the molecule's
 * rings (RDKit's ring information: the symmetrized SSSR of sanitization). A bond is in a ring
 * of a complete ring basis exactly when it lies on a cycle (it is not a bridge), which is found
 * here with a depth-first search; the caller passes RDKit's ring count and gets None when it is
 * below the cycle rank (bonds - atoms + fragments), i.e. when RDKit's rings are no full basis.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_ATOMS 512
#define MAX_BONDS 1024
#define MAX_DEGREE 12
#define MAX_PATTERN_ATOMS 8
#define MAX_PATTERN_BONDS 8

enum { ANY = 0, RING = 1, SINGLE_OR_AROMATIC = 2 };
enum { BT_SINGLE = 1, BT_DOUBLE = 2, BT_TRIPLE = 3, BT_QUADRUPLE = 4, BT_AROMATIC = 12,
       DIRECTIONAL = 100 };

typedef struct {
    int natoms, nbonds;
    uint8_t z[MAX_ATOMS];
    uint8_t aromatic[MAX_ATOMS];
    uint8_t in_ring[MAX_ATOMS];
    uint8_t degree[MAX_ATOMS];
    int16_t nbr[MAX_ATOMS][MAX_DEGREE];
    int16_t nbr_bond[MAX_ATOMS][MAX_DEGREE];
    int16_t begin[MAX_BONDS], end[MAX_BONDS];
    uint8_t type[MAX_BONDS];       /* RDKit Bond::BondType value; 12 = aromatic */
    uint8_t ring_bond[MAX_BONDS];
    int fragments;
} Graph;

typedef struct {
    int natoms, nbonds;
    uint8_t atom_query[MAX_PATTERN_ATOMS];
    int8_t bond_a[MAX_PATTERN_BONDS], bond_b[MAX_PATTERN_BONDS];
    uint8_t bond_query[MAX_PATTERN_BONDS];
    /* derived: how atom i > 0 is reached, and which bonds close on it */
    int8_t anchor_atom[MAX_PATTERN_ATOMS], anchor_bond[MAX_PATTERN_ATOMS];
    int8_t closures[MAX_PATTERN_ATOMS][MAX_PATTERN_BONDS];
    int8_t nclosures[MAX_PATTERN_ATOMS];
} Pattern;

/* The 13 patterns of RDKit's PatternFingerprints.cpp, atoms and bonds in the order RDKit's
 * SMARTS parser numbers them (ring closure bonds where the ring closes). */
typedef struct { const char *smarts; int natoms; int ring_atoms_mask; int nbonds;
                 int bonds[MAX_PATTERN_BONDS][3]; } PatternSpec;

static const PatternSpec SPECS[] = {
    {"[*]~[*]", 2, 0x00, 1, {{0, 1, ANY}}},
    {"[*]~[*]~[*]", 3, 0x00, 2, {{0, 1, ANY}, {1, 2, ANY}}},
    {"[R]~1~[R]~[R]~1", 3, 0x07, 3, {{0, 1, ANY}, {1, 2, ANY}, {0, 2, ANY}}},
    {"[*]~[*](~[*])~[*]", 4, 0x00, 3, {{0, 1, ANY}, {1, 2, ANY}, {1, 3, ANY}}},
    {"[R]~1[R]~[R]~[R]~1", 4, 0x0f, 4,
     {{0, 1, SINGLE_OR_AROMATIC}, {1, 2, ANY}, {2, 3, ANY}, {0, 3, ANY}}},
    {"[*]~[*]~[*](~[*])~[*]", 5, 0x00, 4, {{0, 1, ANY}, {1, 2, ANY}, {2, 3, ANY}, {2, 4, ANY}}},
    {"[R]~1~[R]~[R]~[R]~[R]~1", 5, 0x1f, 5,
     {{0, 1, ANY}, {1, 2, ANY}, {2, 3, ANY}, {3, 4, ANY}, {0, 4, ANY}}},
    {"[R]~1~[R]~[R]~[R]~[R]~[R]~1", 6, 0x3f, 6,
     {{0, 1, ANY}, {1, 2, ANY}, {2, 3, ANY}, {3, 4, ANY}, {4, 5, ANY}, {0, 5, ANY}}},
    {"[R](@[R])(@[R])~[R]~[R](@[R])(@[R])", 7, 0x7f, 6,
     {{0, 1, RING}, {0, 2, RING}, {0, 3, ANY}, {3, 4, ANY}, {4, 5, RING}, {4, 6, RING}}},
    {"[R](@[R])(@[R])~[R]@[R]~[R](@[R])(@[R])", 8, 0xff, 7,
     {{0, 1, RING}, {0, 2, RING}, {0, 3, ANY}, {3, 4, RING}, {4, 5, ANY}, {5, 6, RING},
      {5, 7, RING}}},
    {"[*]~[R](@[R])@[R](@[R])~[*]", 6, 0x1e, 5,
     {{0, 1, ANY}, {1, 2, RING}, {1, 3, RING}, {3, 4, RING}, {3, 5, ANY}}},
    {"[*]~[R](@[R])@[R]@[R](@[R])~[*]", 7, 0x3e, 6,
     {{0, 1, ANY}, {1, 2, RING}, {1, 3, RING}, {3, 4, RING}, {4, 5, RING}, {4, 6, ANY}}},
    {"[*]", 1, 0x00, 0, {{0}}},
};
#define NPATTERNS ((int)(sizeof(SPECS) / sizeof(SPECS[0])))
static Pattern PATTERNS[NPATTERNS];

static inline void hash_combine(uint32_t *seed, uint32_t v) {
    *seed ^= v + 0x9e3779b9u + (*seed << 6) + (*seed >> 2);
}

/* ------------------------------------------------------------------ elements */

static const char *ELEMENTS[] = {
    "*", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd",
    "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
    "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};
#define NELEMENTS ((int)(sizeof(ELEMENTS) / sizeof(ELEMENTS[0])))

/* Atomic number of the element symbol of length len at s (first letter upper case), or 0. */
static int element(const char *s, int len) {
    for (int z = 1; z < NELEMENTS; z++)
        if ((int)strlen(ELEMENTS[z]) == len && strncmp(ELEMENTS[z], s, len) == 0) return z;
    return 0;
}

/* ------------------------------------------------------------------ SMILES */

static int add_atom(Graph *g, int z, int aromatic) {
    if (g->natoms >= MAX_ATOMS) return -1;
    int i = g->natoms++;
    g->z[i] = (uint8_t)z;
    g->aromatic[i] = (uint8_t)aromatic;
    g->degree[i] = 0;
    g->in_ring[i] = 0;
    return i;
}

/* bond code: 0 = unspecified, DIRECTIONAL for / and \, else an RDKit bond type */
static int add_bond(Graph *g, int a, int b, int code) {
    if (a == b || g->nbonds >= MAX_BONDS || g->degree[a] >= MAX_DEGREE ||
        g->degree[b] >= MAX_DEGREE)
        return -1;
    if (code == DIRECTIONAL) {
        /* RDKit writes / or \ for a single bond, but also for an aromatic ring bond next to a
         * stereo double bond; between two aromatic atoms the text does not say which */
        if (g->aromatic[a] && g->aromatic[b]) return -1;
        code = BT_SINGLE;
    }
    for (int k = 0; k < g->degree[a]; k++)
        if (g->nbr[a][k] == b) return -1;   /* a second bond between two atoms */
    int type = code ? code : ((g->aromatic[a] && g->aromatic[b]) ? BT_AROMATIC : BT_SINGLE);
    int i = g->nbonds++;
    g->begin[i] = (int16_t)a;
    g->end[i] = (int16_t)b;
    g->type[i] = (uint8_t)type;
    g->ring_bond[i] = 0;
    g->nbr[a][g->degree[a]] = (int16_t)b;
    g->nbr_bond[a][g->degree[a]++] = (int16_t)i;
    g->nbr[b][g->degree[b]] = (int16_t)a;
    g->nbr_bond[b][g->degree[b]++] = (int16_t)i;
    return 0;
}

/* Bracket atom "[...]" starting at s[*pos] == '['; returns the atom index or -1. */
static int bracket_atom(Graph *g, const char *s, Py_ssize_t n, Py_ssize_t *pos) {
    Py_ssize_t i = *pos + 1;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;                 /* isotope */
    if (i >= n) return -1;
    int z = 0, aromatic = 0;
    char c = s[i];
    if (c >= 'A' && c <= 'Z') {
        if (i + 1 < n && s[i + 1] >= 'a' && s[i + 1] <= 'z' && (z = element(s + i, 2))) {
            i += 2;
        } else if ((z = element(s + i, 1))) {
            i += 1;
        } else {
            return -1;
        }
    } else if (c >= 'a' && c <= 'z') {                                /* aromatic */
        char buf[2] = {(char)(c - 'a' + 'A'), 0};
        if (i + 1 < n && s[i + 1] >= 'a' && s[i + 1] <= 'z') {
            buf[1] = s[i + 1];
            if ((z = element(buf, 2))) i += 2;
        }
        if (!z) {
            if (!(z = element(buf, 1))) return -1;
            i += 1;
        }
        aromatic = 1;
    } else {
        return -1;                                                     /* '*' and the rest */
    }
    if (i < n && s[i] == '@') {                                        /* chirality */
        while (i < n && s[i] == '@') i++;
        while (i < n && ((s[i] >= 'A' && s[i] <= 'Z' && s[i] != 'H') ||
                         (s[i] >= '0' && s[i] <= '9')))
            i++;
    }
    if (i < n && s[i] == 'H') {                                        /* hydrogen count */
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    while (i < n && (s[i] == '+' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))) i++;
    if (i < n && s[i] == ':') {                                        /* atom class */
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i >= n || s[i] != ']') return -1;
    *pos = i + 1;
    return add_atom(g, z, aromatic);
}

static int parse_smiles(Graph *g, const char *s, Py_ssize_t n) {
    int ring_atom[1000], ring_code[1000];
    int stack[MAX_ATOMS], depth = 0;
    for (int k = 0; k < 1000; k++) ring_atom[k] = -1;
    g->natoms = g->nbonds = 0;
    int prev = -1, code = 0, have_bond = 0;
    Py_ssize_t i = 0;
    while (i < n) {
        char c = s[i];
        int atom = -2;
        if (c == '[') {
            atom = bracket_atom(g, s, n, &i);
            if (atom < 0) return -1;
        } else if (c == 'B' || c == 'C' || c == 'N' || c == 'O' || c == 'P' || c == 'S' ||
                   c == 'F' || c == 'I') {
            int z;
            if (c == 'C' && i + 1 < n && s[i + 1] == 'l') { z = 17; i += 2; }
            else if (c == 'B' && i + 1 < n && s[i + 1] == 'r') { z = 35; i += 2; }
            else { z = element(&s[i], 1); i += 1; }
            if ((atom = add_atom(g, z, 0)) < 0) return -1;
        } else if (c == 'b' || c == 'c' || c == 'n' || c == 'o' || c == 'p' || c == 's') {
            char up = (char)(c - 'a' + 'A');
            if ((atom = add_atom(g, element(&up, 1), 1)) < 0) return -1;
            i += 1;
        } else if (c == '-' || c == '/' || c == '\\') {
            if (have_bond) return -1;
            if (c == '-' && i + 1 < n && s[i + 1] == '>') return -1;  /* dative */
            code = c == '-' ? BT_SINGLE : DIRECTIONAL; have_bond = 1; i++; continue;
        } else if (c == '=') { if (have_bond) return -1; code = BT_DOUBLE; have_bond = 1; i++; continue;
        } else if (c == '#') { if (have_bond) return -1; code = BT_TRIPLE; have_bond = 1; i++; continue;
        } else if (c == '$') { if (have_bond) return -1; code = BT_QUADRUPLE; have_bond = 1; i++; continue;
        } else if (c == ':') { if (have_bond) return -1; code = BT_AROMATIC; have_bond = 1; i++; continue;
        } else if (c == '(') {
            if (prev < 0 || have_bond || depth >= MAX_ATOMS) return -1;
            stack[depth++] = prev; i++; continue;
        } else if (c == ')') {
            if (depth == 0 || have_bond) return -1;
            prev = stack[--depth]; i++; continue;
        } else if (c == '.') {
            if (have_bond || depth) return -1;
            prev = -1; i++; continue;
        } else if ((c >= '0' && c <= '9') || c == '%') {
            int num;
            if (c == '%') {
                if (i + 1 < n && s[i + 1] == '(') {
                    Py_ssize_t j = i + 2; num = 0;
                    while (j < n && s[j] >= '0' && s[j] <= '9' && num < 1000) num = num * 10 + (s[j++] - '0');
                    if (j >= n || s[j] != ')' || num >= 1000) return -1;
                    i = j + 1;
                } else {
                    if (i + 2 >= n || !(s[i + 1] >= '0' && s[i + 1] <= '9') ||
                        !(s[i + 2] >= '0' && s[i + 2] <= '9'))
                        return -1;
                    num = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
                    i += 3;
                }
            } else {
                num = c - '0'; i++;
            }
            if (prev < 0) return -1;
            if (ring_atom[num] < 0) {
                ring_atom[num] = prev;
                ring_code[num] = have_bond ? code : 0;
            } else {
                int bcode = have_bond ? code : 0;
                if (bcode && ring_code[num] && bcode != ring_code[num]) return -1;
                if (!bcode) bcode = ring_code[num];
                if (add_bond(g, ring_atom[num], prev, bcode) < 0) return -1;
                ring_atom[num] = -1;
            }
            have_bond = 0; code = 0;
            continue;
        } else {
            return -1;
        }
        /* an atom was read */
        if (prev >= 0) {
            if (add_bond(g, prev, atom, have_bond ? code : 0) < 0) return -1;
        } else if (have_bond) {
            return -1;
        }
        prev = atom; have_bond = 0; code = 0;
    }
    if (have_bond || depth) return -1;
    for (int k = 0; k < 1000; k++)
        if (ring_atom[k] >= 0) return -1;                             /* unclosed ring */
    return g->natoms ? 0 : -1;
}

/* Bonds on a cycle (not bridges) and their atoms, and the number of fragments, by an
 * iterative depth-first search (Tarjan's bridges). */
static void find_ring_bonds(Graph *g) {
    int disc[MAX_ATOMS], low[MAX_ATOMS], parent_bond[MAX_ATOMS], next[MAX_ATOMS];
    int stack[MAX_ATOMS];
    int time = 0;
    g->fragments = 0;
    for (int a = 0; a < g->natoms; a++) disc[a] = -1;
    for (int root = 0; root < g->natoms; root++) {
        if (disc[root] >= 0) continue;
        g->fragments++;
        int top = 0;
        stack[top++] = root;
        disc[root] = low[root] = time++;
        parent_bond[root] = -1;
        next[root] = 0;
        while (top) {
            int v = stack[top - 1];
            if (next[v] < g->degree[v]) {
                int k = next[v]++;
                int w = g->nbr[v][k], b = g->nbr_bond[v][k];
                if (b == parent_bond[v]) continue;
                if (disc[w] < 0) {
                    disc[w] = low[w] = time++;
                    parent_bond[w] = b;
                    next[w] = 0;
                    stack[top++] = w;
                } else if (disc[w] < low[v]) {
                    low[v] = disc[w];
                }
            } else {
                top--;
                if (top) {
                    int u = stack[top - 1];
                    if (low[v] < low[u]) low[u] = low[v];
                    if (low[v] <= disc[u]) g->ring_bond[parent_bond[v]] = 1;  /* not a bridge */
                }
            }
        }
    }
    /* back edges are ring bonds too */
    for (int b = 0; b < g->nbonds; b++) {
        int a1 = g->begin[b], a2 = g->end[b];
        if (!g->ring_bond[b] && parent_bond[a1] != b && parent_bond[a2] != b)
            g->ring_bond[b] = 1;
    }
    for (int b = 0; b < g->nbonds; b++)
        if (g->ring_bond[b]) g->in_ring[g->begin[b]] = g->in_ring[g->end[b]] = 1;
}

/* The graph of the molecule RDKit wrote as smiles[0..n), with its ring bonds, into a new *out
 * (PyMem_Free it): 1; 0 when the SMILES holds what this reader does not know or num_rings
 * (RDKit's ring count) is below the cycle rank (RDKit's rings are no full basis: its "in a
 * ring" may differ from "on a cycle"), nothing allocated; -1 with MemoryError set. */
static int read_graph(const char *smiles, Py_ssize_t n, int num_rings, Graph **out) {
    Graph *g = PyMem_Malloc(sizeof(Graph));
    if (!g) {
        PyErr_NoMemory();
        return -1;
    }
    if (parse_smiles(g, smiles, n) < 0) {
        PyMem_Free(g);
        return 0;
    }
    find_ring_bonds(g);
    if (num_rings < g->nbonds - g->natoms + g->fragments) {
        PyMem_Free(g);
        return 0;
    }
    *out = g;
    return 1;
}

/* ------------------------------------------------------------------ matching */

typedef struct {
    const Graph *g;
    const Pattern *p;
    int pidx;
    uint8_t *bits;
    uint32_t fp_size;
    int map[MAX_PATTERN_ATOMS];
    int bond_of[MAX_PATTERN_BONDS];
    uint8_t used[MAX_ATOMS];
    long matches;
} Matcher;

static inline int bond_between(const Graph *g, int a, int b) {
    for (int k = 0; k < g->degree[a]; k++)
        if (g->nbr[a][k] == b) return g->nbr_bond[a][k];
    return -1;
}

static inline int bond_ok(const Graph *g, int b, int query) {
    if (query == ANY) return 1;
    if (query == RING) return g->ring_bond[b];
    return g->type[b] == BT_SINGLE || g->type[b] == BT_AROMATIC;   /* SINGLE_OR_AROMATIC */
}

static inline void set_bit(uint8_t *bits, uint32_t fp_size, uint32_t v) {
    /* a power-of-two size (2048) takes a mask instead of a division: same bit */
    uint32_t bit = (fp_size & (fp_size - 1)) ? v % fp_size : v & (fp_size - 1);
    bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
}

static void matched(Matcher *m) {
    const Pattern *p = m->p;
    uint32_t bit_id = (uint32_t)m->pidx;
    for (int i = 0; i < p->natoms; i++) hash_combine(&bit_id, m->g->z[m->map[i]]);
    for (int j = 0; j < p->nbonds; j++) hash_combine(&bit_id, m->g->type[m->bond_of[j]]);
    set_bit(m->bits, m->fp_size, bit_id);
    m->matches++;
}

static void extend(Matcher *m, int i) {
    const Pattern *p = m->p;
    const Graph *g = m->g;
    if (i == p->natoms) {
        matched(m);
        return;
    }
    int from = m->map[(int)p->anchor_atom[i]];
    int anchor = p->anchor_bond[i];
    for (int k = 0; k < g->degree[from]; k++) {
        int a = g->nbr[from][k], b = g->nbr_bond[from][k];
        if (m->used[a]) continue;
        if ((p->atom_query[i] == RING) && !g->in_ring[a]) continue;
        if (!bond_ok(g, b, p->bond_query[anchor])) continue;
        int ok = 1;
        for (int c = 0; c < p->nclosures[i] && ok; c++) {
            int j = p->closures[i][c];
            int other = p->bond_a[j] == i ? p->bond_b[j] : p->bond_a[j];
            int mb = bond_between(g, a, m->map[other]);
            if (mb < 0 || !bond_ok(g, mb, p->bond_query[j])) ok = 0;
            else m->bond_of[j] = mb;
        }
        if (!ok) continue;
        m->bond_of[anchor] = b;
        m->map[i] = a;
        m->used[a] = 1;
        extend(m, i + 1);
        m->used[a] = 0;
    }
}

static void fingerprint(const Graph *g, uint8_t *bits, uint32_t fp_size) {
    Matcher m;
    m.g = g;
    m.bits = bits;
    m.fp_size = fp_size;
    memset(m.used, 0, sizeof(m.used[0]) * (size_t)g->natoms);
    for (int pi = 0; pi < NPATTERNS; pi++) {
        const Pattern *p = &PATTERNS[pi];
        m.p = p;
        m.pidx = pi + 1;
        m.matches = 0;
        for (int a = 0; a < g->natoms; a++) {
            if (p->atom_query[0] == RING && !g->in_ring[a]) continue;
            m.map[0] = a;
            m.used[a] = 1;
            extend(&m, 1);
            m.used[a] = 0;
        }
        uint32_t count_id = (uint32_t)(m.pidx + p->natoms + p->nbonds);
        for (long k = 0; k < m.matches; k++) {
            hash_combine(&count_id, 0xBEEFu);
            set_bit(bits, fp_size, count_id);
        }
    }
}

/* Bond j (atoms a, b) of a query q (a Pattern or a Skel: the same fields) is the anchor of its
   later atom, the bond by which a match reaches that atom from an earlier one, or, when the
   atom has one already, a ring closure checked once both atoms are matched. */
#define ANCHOR_OR_CLOSE(q, j, a, b) do {                                  \
        int later_ = (a) > (b) ? (a) : (b), earlier_ = (a) > (b) ? (b) : (a);  \
        if ((q)->anchor_bond[later_] < 0) {                                \
            (q)->anchor_bond[later_] = (int8_t)(j);                        \
            (q)->anchor_atom[later_] = (int8_t)earlier_;                   \
        } else {                                                           \
            (q)->closures[later_][(q)->nclosures[later_]++] = (int8_t)(j); \
        }                                                                  \
    } while (0)

static int setup_patterns(void) {
    for (int pi = 0; pi < NPATTERNS; pi++) {
        const PatternSpec *s = &SPECS[pi];
        Pattern *p = &PATTERNS[pi];
        memset(p, 0, sizeof(*p));
        p->natoms = s->natoms;
        p->nbonds = s->nbonds;
        for (int i = 0; i < s->natoms; i++) {
            p->atom_query[i] = (s->ring_atoms_mask >> i) & 1 ? RING : ANY;
            p->anchor_atom[i] = p->anchor_bond[i] = -1;
        }
        for (int j = 0; j < s->nbonds; j++) {
            int a = s->bonds[j][0], b = s->bonds[j][1];
            p->bond_a[j] = (int8_t)a;
            p->bond_b[j] = (int8_t)b;
            p->bond_query[j] = (uint8_t)s->bonds[j][2];
            ANCHOR_OR_CLOSE(p, j, a, b);
        }
        for (int i = 1; i < s->natoms; i++)
            if (p->anchor_bond[i] < 0) return -1;   /* every atom reached from an earlier one */
    }
    return 0;
}

/* ------------------------------------------------------------------ skeleton queries
 *
 * Simple substructure queries: the route gates' skeletons (precursor_screen/rules/gates.py,
 * class Skeleton), the rule engine's relaxed substrate screens, the group gates. Atoms are one
 * of up to four elements, any heteroatom (not C, not H) or any atom, optionally "bears a
 * heteroatom" (has a neighbour that is not C and not H); bonds are aromatic, not aromatic, any,
 * single, double or triple, optionally in a ring or not in one. RDKit's HasSubstructMatch with such a query asks for
 * an injective map of query atoms onto molecule atoms taking each query bond onto a molecule
 * bond; so does this matcher (it stops at the first). rules/fastgate.py compiles the queries,
 * orders each query's atoms so that every atom after the first is bonded to an earlier one, and
 * checks the answers against RDKit on start. */

#define MAX_SKEL_ATOMS 64
#define MAX_SKEL_BONDS 96
#define MAX_NEEDS 8
#define COUNTED_ELEMENTS 128
enum { Z_ANY = 0, Z_HETERO = 255, NO_DEGREE_LIMIT = 255, SKEL_ATOM_BYTES = 8 };
/* what a query atom asks of the atom's aromaticity: anything, aliphatic (SMARTS A), aromatic (a) */
enum { KIND_ANY = 0, KIND_ALIPHATIC = 1, KIND_AROMATIC = 2, SKEL_ATOM_KINDS = 3 };
enum { SB_ANY = 0, SB_AROMATIC = 1, SB_NOT_AROMATIC = 2, SB_SINGLE = 3, SB_DOUBLE = 4,
       SB_TRIPLE = 5, SB_SINGLE_OR_AROMATIC = 6 };

typedef struct {
    int natoms, nbonds;
    uint8_t nz[MAX_SKEL_ATOMS], z[MAX_SKEL_ATOMS][4], bears[MAX_SKEL_ATOMS];
    uint8_t max_degree[MAX_SKEL_ATOMS];   /* most neighbours in the graph; NO_DEGREE_LIMIT */
    uint8_t atom_kind[MAX_SKEL_ATOMS];    /* KIND_ANY, KIND_ALIPHATIC or KIND_AROMATIC */
    int8_t bond_a[MAX_SKEL_BONDS], bond_b[MAX_SKEL_BONDS];
    uint8_t kind[MAX_SKEL_BONDS], ring[MAX_SKEL_BONDS];
    int8_t anchor_atom[MAX_SKEL_ATOMS], anchor_bond[MAX_SKEL_ATOMS];
    int8_t closures[MAX_SKEL_ATOMS][MAX_SKEL_BONDS];
    int8_t nclosures[MAX_SKEL_ATOMS];
    /* elements the query names alone on an atom, and on how many: a molecule with fewer such
     * atoms cannot hold it (the map is injective) */
    uint8_t need_z[MAX_NEEDS], need_n[MAX_NEEDS];
    int nneeds;
} Skel;

typedef struct {
    int n;
    int limits;     /* some query atom bounds its neighbours */
    Skel *skel;
} SkelSet;

typedef struct {
    const Graph *g;
    const Skel *q;
    const uint8_t *bears;
    int map[MAX_SKEL_ATOMS];
    uint8_t used[MAX_ATOMS];
} SkelMatcher;

static inline int skel_atom_ok(const SkelMatcher *m, int i, int a) {
    const Skel *q = m->q;
    int z = m->g->z[a], nz = q->nz[i];
    if (nz == 1 && q->z[i][0] == Z_HETERO) {
        if (z == 6 || z == 1) return 0;
    } else if (nz) {
        int ok = 0;
        for (int k = 0; k < nz; k++) ok |= q->z[i][k] == z;
        if (!ok) return 0;
    }
    if (m->g->degree[a] > q->max_degree[i]) return 0;
    if (q->atom_kind[i] && (q->atom_kind[i] == KIND_AROMATIC) != (m->g->aromatic[a] != 0))
        return 0;
    return !q->bears[i] || m->bears[a];
}

/* ring: 0 any bond, 1 a ring bond, 2 a bond in no ring */
static inline int skel_bond_ok(const Graph *g, int b, int kind, int ring) {
    if (ring == 1 && !g->ring_bond[b]) return 0;
    if (ring == 2 && g->ring_bond[b]) return 0;
    int t = g->type[b];
    switch (kind) {
    case SB_ANY: return 1;
    case SB_AROMATIC: return t == BT_AROMATIC;
    case SB_NOT_AROMATIC: return t != BT_AROMATIC;
    case SB_SINGLE: return t == BT_SINGLE;
    case SB_DOUBLE: return t == BT_DOUBLE;
    case SB_TRIPLE: return t == BT_TRIPLE;
    case SB_SINGLE_OR_AROMATIC: return t == BT_SINGLE || t == BT_AROMATIC;
    }
    return 0;
}

static int skel_extend(SkelMatcher *m, int i) {
    const Skel *q = m->q;
    const Graph *g = m->g;
    if (i == q->natoms) return 1;
    int from = m->map[(int)q->anchor_atom[i]];
    int anchor = q->anchor_bond[i];
    for (int k = 0; k < g->degree[from]; k++) {
        int a = g->nbr[from][k], b = g->nbr_bond[from][k];
        if (m->used[a] || !skel_atom_ok(m, i, a)) continue;
        if (!skel_bond_ok(g, b, q->kind[anchor], q->ring[anchor])) continue;
        int ok = 1;
        for (int c = 0; c < q->nclosures[i] && ok; c++) {
            int j = q->closures[i][c];
            int other = q->bond_a[j] == i ? q->bond_b[j] : q->bond_a[j];
            int mb = bond_between(g, a, m->map[other]);
            if (mb < 0 || !skel_bond_ok(g, mb, q->kind[j], q->ring[j])) ok = 0;
        }
        if (!ok) continue;
        m->map[i] = a;
        m->used[a] = 1;
        int found = skel_extend(m, i + 1);
        m->used[a] = 0;
        if (found) return 1;
    }
    return 0;
}

static int skel_match(const Graph *g, const uint8_t *bears, const uint16_t *count,
                      const Skel *q) {
    if (q->natoms > g->natoms || q->nbonds > g->nbonds) return 0;
    for (int k = 0; k < q->nneeds; k++)
        if (count[q->need_z[k]] < q->need_n[k]) return 0;
    SkelMatcher m;
    m.g = g;
    m.q = q;
    m.bears = bears;
    memset(m.used, 0, sizeof(m.used[0]) * (size_t)g->natoms);
    for (int a = 0; a < g->natoms; a++) {
        if (!skel_atom_ok(&m, 0, a)) continue;
        m.map[0] = a;
        m.used[a] = 1;
        int found = skel_extend(&m, 1);
        m.used[a] = 0;
        if (found) return 1;
    }
    return 0;
}

static void skelset_free(PyObject *capsule) {
    SkelSet *set = PyCapsule_GetPointer(capsule, "precursor_screen.skeletons");
    if (set) {
        PyMem_Free(set->skel);
        PyMem_Free(set);
    }
}

/* compile_skeletons([(atoms, bonds), ...]) with atoms = bytes of (n, z1, z2, z3, z4, bears,
 * max_degree, kind) octets in matching order (n elements, 0 for any atom, one 255 for any
 * heteroatom; max_degree: most neighbours, 255 for any; kind: KIND_ANY, KIND_ALIPHATIC for an
 * atom that must not be aromatic, KIND_AROMATIC for one that must) and bonds = bytes of
 * (a, b, kind, ring) quadruples -> capsule */
static PyObject *compile_skeletons(PyObject *self, PyObject *args) {
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    SkelSet *set = PyMem_Malloc(sizeof(SkelSet));
    if (!set) return PyErr_NoMemory();
    set->n = (int)n;
    set->limits = 0;
    set->skel = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Skel));
    if (!set->skel) { PyMem_Free(set); return PyErr_NoMemory(); }
    for (Py_ssize_t k = 0; k < n; k++) {
        const char *atoms, *bonds;
        Py_ssize_t na, nb;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, k), "y#y#", &atoms, &na, &bonds, &nb))
            goto fail;
        Skel *q = &set->skel[k];
        if (na % SKEL_ATOM_BYTES || nb % 4 || na / SKEL_ATOM_BYTES < 1
            || na / SKEL_ATOM_BYTES > MAX_SKEL_ATOMS || nb / 4 > MAX_SKEL_BONDS) {
            PyErr_SetString(PyExc_ValueError, "skeleton too large or malformed");
            goto fail;
        }
        q->natoms = (int)(na / SKEL_ATOM_BYTES);
        q->nbonds = (int)(nb / 4);
        for (int i = 0; i < q->natoms; i++) {
            const char *atom = atoms + SKEL_ATOM_BYTES * i;
            q->nz[i] = (uint8_t)atom[0];
            if (q->nz[i] > 4) {
                PyErr_SetString(PyExc_ValueError, "more than four elements on a query atom");
                goto fail;
            }
            for (int k = 0; k < 4; k++) q->z[i][k] = (uint8_t)atom[1 + k];
            q->bears[i] = (uint8_t)atom[5];
            q->max_degree[i] = (uint8_t)atom[6];
            q->atom_kind[i] = (uint8_t)atom[7];
            if (q->atom_kind[i] >= SKEL_ATOM_KINDS) {
                PyErr_SetString(PyExc_ValueError, "atom kind malformed");
                goto fail;
            }
            if (q->max_degree[i] != NO_DEGREE_LIMIT) set->limits = 1;
            q->anchor_atom[i] = q->anchor_bond[i] = -1;
            q->nclosures[i] = 0;
        }
        for (int j = 0; j < q->nbonds; j++) {
            int a = (uint8_t)bonds[4 * j], b = (uint8_t)bonds[4 * j + 1];
            if (a >= q->natoms || b >= q->natoms || a == b || (uint8_t)bonds[4 * j + 2] > SB_SINGLE_OR_AROMATIC) {
                PyErr_SetString(PyExc_ValueError, "skeleton bond malformed");
                goto fail;
            }
            q->bond_a[j] = (int8_t)a;
            q->bond_b[j] = (int8_t)b;
            q->kind[j] = (uint8_t)bonds[4 * j + 2];
            q->ring[j] = (uint8_t)bonds[4 * j + 3];
            if (q->ring[j] > 2) {
                PyErr_SetString(PyExc_ValueError, "skeleton bond ring flag malformed");
                goto fail;
            }
            ANCHOR_OR_CLOSE(q, j, a, b);
        }
        q->nneeds = 0;
        for (int i = 0; i < q->natoms; i++) {
            int z = q->z[i][0];
            if (q->nz[i] != 1 || z == Z_ANY || z == Z_HETERO || z >= COUNTED_ELEMENTS) continue;
            int k = 0;
            while (k < q->nneeds && q->need_z[k] != z) k++;
            if (k == q->nneeds) {
                if (k == MAX_NEEDS) continue;      /* a prefilter: the rest goes unchecked */
                q->need_z[k] = (uint8_t)z;
                q->need_n[k] = 0;
                q->nneeds++;
            }
            if (q->need_n[k] < 255) q->need_n[k]++;
        }
        for (int i = 1; i < q->natoms; i++)
            if (q->anchor_bond[i] < 0) {
                PyErr_SetString(PyExc_ValueError, "skeleton atoms not in a connected order");
                goto fail;
            }
    }
    return PyCapsule_New(set, "precursor_screen.skeletons", skelset_free);
fail:
    PyMem_Free(set->skel);
    PyMem_Free(set);
    return NULL;
}

/* The graph of the SMILES read last, with its atoms that bear a heteroatom: a screen asks
 * several query sets of one molecule in a row (route gates, forward templates, protecting
 * groups, rule screens), and each would read it again. Kept until another SMILES (or another
 * ring count) comes; the GIL is held throughout, so one cache serves the process. */
static struct {
    char *smiles;
    Py_ssize_t n;
    int num_rings, read, hydrogens;
    Graph *g;
    uint8_t bears[MAX_ATOMS];
    uint16_t count[COUNTED_ELEMENTS];   /* atoms of each element */
} LAST = {NULL, -1, -1, 0, 0, NULL, {0}, {0}};

/* read_graph's answer for smiles (1, 0 or -1), the graph and its bearing atoms in *g, *bears
 * (owned by the cache: not to be freed), whether it has hydrogen atoms in *hydrogens */
static int cached_graph(const char *smiles, Py_ssize_t n, int num_rings, const Graph **g,
                        const uint8_t **bears, int *hydrogens) {
    if (LAST.smiles && LAST.n == n && LAST.num_rings == num_rings
            && memcmp(LAST.smiles, smiles, (size_t)n) == 0) {
        *g = LAST.g;
        *bears = LAST.bears;
        *hydrogens = LAST.hydrogens;
        return LAST.read;
    }
    PyMem_Free(LAST.smiles);
    PyMem_Free(LAST.g);
    LAST.smiles = NULL;
    LAST.g = NULL;
    Graph *read_into;
    int read = read_graph(smiles, n, num_rings, &read_into);
    if (read < 0) return -1;
    char *copy = PyMem_Malloc(n ? (size_t)n : 1);
    if (!copy) {
        if (read) PyMem_Free(read_into);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, smiles, (size_t)n);
    LAST.smiles = copy;
    LAST.n = n;
    LAST.num_rings = num_rings;
    LAST.read = read;
    LAST.hydrogens = 0;
    memset(LAST.count, 0, sizeof(LAST.count));
    if (read) {
        LAST.g = read_into;
        for (int a = 0; a < read_into->natoms; a++) {
            if (read_into->z[a] == 1) LAST.hydrogens = 1;
            if (read_into->z[a] < COUNTED_ELEMENTS) LAST.count[read_into->z[a]]++;
            LAST.bears[a] = 0;
            for (int k = 0; k < read_into->degree[a]; k++) {
                int z = read_into->z[read_into->nbr[a][k]];
                if (z != 6 && z != 1) { LAST.bears[a] = 1; break; }
            }
        }
    }
    *g = LAST.g;
    *bears = LAST.bears;
    *hydrogens = LAST.hydrogens;
    return read;
}

/* match_skeletons(capsule, smiles, num_rings[, only]) -> bytes (bit k: query k matches; with
 * only, a bytes bit mask, the queries outside it are not matched and their bits are 0) | None; None
 * also for a molecule with hydrogen atoms when a query bounds an atom's neighbours (RDKit's D
 * counts a [2H] as a neighbour, and a bound written for heavy atoms would not hold) */
static PyObject *match_skeletons(PyObject *self, PyObject *args) {
    PyObject *capsule;
    const char *smiles;
    Py_ssize_t n;
    int num_rings;
    const char *only = NULL;
    Py_ssize_t nonly = 0;
    if (!PyArg_ParseTuple(args, "Os#i|y#", &capsule, &smiles, &n, &num_rings, &only, &nonly))
        return NULL;
    SkelSet *set = PyCapsule_GetPointer(capsule, "precursor_screen.skeletons");
    if (!set) return NULL;
    if (only && nonly < (set->n + 7) / 8) {
        PyErr_SetString(PyExc_ValueError, "only: too few bytes for the query set");
        return NULL;
    }
    const Graph *g;
    const uint8_t *bears;
    int hydrogens;
    int read = cached_graph(smiles, n, num_rings, &g, &bears, &hydrogens);
    if (read < 0) return NULL;
    if (read == 0 || (hydrogens && set->limits)) Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (set->n + 7) / 8);
    if (!out) return NULL;
    uint8_t *bits = (uint8_t *)PyBytes_AS_STRING(out);
    memset(bits, 0, (size_t)(set->n + 7) / 8);
    for (int k = 0; k < set->n; k++) {
        if (only && !(((const uint8_t *)only)[k >> 3] >> (k & 7) & 1)) continue;
        if (skel_match(g, bears, LAST.count, &set->skel[k]))
            bits[k >> 3] |= (uint8_t)(1u << (k & 7));
    }
    return out;
}

/* ------------------------------------------------------------------ Python */

static PyObject *pattern_fingerprint(PyObject *self, PyObject *args) {
    const char *smiles;
    Py_ssize_t n;
    unsigned int fp_size;
    int num_rings;
    if (!PyArg_ParseTuple(args, "s#Ii", &smiles, &n, &fp_size, &num_rings)) return NULL;
    if (fp_size == 0 || fp_size % 8) {
        PyErr_SetString(PyExc_ValueError, "fp_size must be a positive multiple of 8");
        return NULL;
    }
    Graph *g;
    int read = read_graph(smiles, n, num_rings, &g);
    if (read < 0) return NULL;
    if (read == 0) Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, fp_size / 8);
    if (!out) {
        PyMem_Free(g);
        return NULL;
    }
    uint8_t *bits = (uint8_t *)PyBytes_AS_STRING(out);
    memset(bits, 0, fp_size / 8);
    fingerprint(g, bits, fp_size);
    PyMem_Free(g);
    return out;
}

static PyMethodDef METHODS[] = {
    {"pattern_fingerprint", pattern_fingerprint, METH_VARARGS,
     "pattern_fingerprint(smiles, fp_size, num_rings) -> bytes | None\n\n"
     "RDKit's pattern fingerprint of the molecule RDKit wrote as `smiles`, packed (bit i is "
     "bit i % 8 of byte i // 8); None when the SMILES holds what this reader does not know or "
     "num_rings (RDKit's ring count) is below the cycle rank."},
    {"compile_skeletons", compile_skeletons, METH_VARARGS,
     "compile_skeletons([(atoms, bonds), ...]) -> capsule: route-gate skeleton queries "
     "(see rules/fastgate.py)"},
    {"match_skeletons", match_skeletons, METH_VARARGS,
     "match_skeletons(skeletons, smiles, num_rings) -> bytes | None: bit k set when query k "
     "matches the molecule RDKit wrote as `smiles`; None as for pattern_fingerprint."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_patternfp",
                                    "RDKit's pattern fingerprint from a SMILES, without RDKit.",
                                    -1, METHODS};

PyMODINIT_FUNC PyInit__patternfp(void) {
    if (setup_patterns() < 0) {
        PyErr_SetString(PyExc_RuntimeError, "pattern table is malformed");
        return NULL;
    }
    PyObject *module = PyModule_Create(&MODULE);
    if (module && (PyModule_AddIntConstant(module, "SKELETON_ATOM_BYTES", SKEL_ATOM_BYTES) < 0
                   || PyModule_AddIntConstant(module, "SKELETON_ATOM_KINDS", SKEL_ATOM_KINDS) < 0)) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
