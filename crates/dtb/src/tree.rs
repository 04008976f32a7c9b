//! The checked node tree of a blob: nodes in document order, their properties, borrowed from
//! the blob.

use crate::error::Error;
use crate::fdt::Header;

/// "No node" in the links between nodes.
pub(crate) const NONE: u32 = u32::MAX;

/// A node of a [`Tree`]: its position in document order (the root is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    /// The position in document order (depth first, the root is 0).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RawNode<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub first_child: u32,
    pub next_sibling: u32,
    pub props_start: u32,
    pub props_end: u32,
    /// Offset of the node's BEGIN_NODE token in the blob.
    pub offset: u32,
    /// 0 for the root.
    pub depth: u8,
}

/// A property: its name (from the strings block) and value, borrowed from the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property<'a> {
    /// The name.
    pub name: &'a str,
    /// The value, as stored (big-endian cells, NUL-terminated strings, …).
    pub value: &'a [u8],
    /// Offset of the property's PROP token in the blob.
    pub offset: usize,
}

impl<'a> Property<'a> {
    /// The value as big-endian 32-bit cells; `None` if its length is not a multiple of 4.
    pub fn cells(&self) -> Option<impl ExactSizeIterator<Item = u32> + Clone + 'a> {
        if !self.value.len().is_multiple_of(4) {
            return None;
        }
        Some(
            self.value
                .chunks_exact(4)
                .map(|c| c.try_into().map_or(0, u32::from_be_bytes)),
        )
    }

    /// The value as one cell; `None` unless it is exactly 4 bytes.
    pub fn u32(&self) -> Option<u32> {
        let b: [u8; 4] = self.value.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }

    /// The value as a list of non-empty, NUL-terminated printable-ASCII strings; `None` if it
    /// is not one (an empty value is an empty list).
    pub fn strings(&self) -> Option<Vec<&'a str>> {
        let Some(body) = self.value.strip_suffix(&[0]) else {
            return self.value.is_empty().then(Vec::new);
        };
        body.split(|&b| b == 0)
            .map(|s| {
                let ok = !s.is_empty() && s.iter().all(|b| (0x20..0x7f).contains(b));
                ok.then(|| std::str::from_utf8(s).ok()).flatten()
            })
            .collect()
    }

    /// The value as one NUL-terminated printable-ASCII string.
    pub fn string(&self) -> Option<&'a str> {
        match self.strings()?.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// A checked device tree: every node and property of a blob that passed the checks of
/// [`Tree::parse`].
#[derive(Debug, Clone)]
pub struct Tree<'a> {
    bytes: &'a [u8],
    header: Header,
    reserved: Vec<(u64, u64)>,
    nodes: Vec<RawNode<'a>>,
    props: Vec<Property<'a>>,
}

impl<'a> Tree<'a> {
    pub(crate) fn new(
        bytes: &'a [u8],
        header: Header,
        reserved: Vec<(u64, u64)>,
        nodes: Vec<RawNode<'a>>,
        props: Vec<Property<'a>>,
    ) -> Self {
        Tree {
            bytes,
            header,
            reserved,
            nodes,
            props,
        }
    }

    /// Checks a blob and returns its tree.
    ///
    /// Rejects, each with the byte offset it found: a short buffer, a bad magic or version,
    /// `totalsize` past the buffer, blocks outside the blob, misaligned or overlapping, an
    /// unterminated reservation map, unknown tokens, a token, name or value cut off by the end
    /// of the structure block, names without NUL (node names in the structure block, property
    /// names in the strings block), name offsets outside the strings block, empty or
    /// non-printable names, nesting deeper than [`crate::MAX_DEPTH`], anything but one root
    /// node, properties after subnodes, END_NODE/END out of place, bytes after END, and two
    /// siblings or two properties of a node with the same name.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        crate::fdt::parse(bytes)
    }

    /// The blob (its first `totalsize` bytes).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The memory reservation map: `(address, size)` entries.
    pub fn reserved(&self) -> &[(u64, u64)] {
        &self.reserved
    }

    /// The root node.
    pub fn root(&self) -> NodeId {
        NodeId(0)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a checked tree has a root.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node in document order (depth first), the root first.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = NodeId> + Clone + use<> {
        (0..self.nodes.len() as u32).map(NodeId)
    }

    fn node(&self, id: NodeId) -> Option<&RawNode<'a>> {
        self.nodes.get(id.index())
    }

    /// The node's name (`""` for the root), unit address included.
    pub fn name(&self, id: NodeId) -> &'a str {
        self.node(id).map_or("", |n| n.name)
    }

    /// The node's parent; `None` for the root.
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        let p = self.node(id)?.parent;
        (p != NONE).then_some(NodeId(p))
    }

    /// Depth: 0 for the root.
    pub fn depth(&self, id: NodeId) -> usize {
        self.node(id).map_or(0, |n| usize::from(n.depth))
    }

    /// Offset of the node's BEGIN_NODE token in the blob.
    pub fn offset(&self, id: NodeId) -> usize {
        self.node(id).map_or(0, |n| n.offset as usize)
    }

    /// The node's children, in document order.
    pub fn children(&self, id: NodeId) -> Children<'_, 'a> {
        Children {
            tree: self,
            next: self.node(id).map_or(NONE, |n| n.first_child),
        }
    }

    /// The node's properties, in document order.
    pub fn properties(&self, id: NodeId) -> &[Property<'a>] {
        self.node(id)
            .and_then(|n| self.props.get(n.props_start as usize..n.props_end as usize))
            .unwrap_or_default()
    }

    /// The node's property called `name`.
    pub fn property(&self, id: NodeId, name: &str) -> Option<&Property<'a>> {
        self.properties(id).iter().find(|p| p.name == name)
    }

    /// The node's absolute path: `/`, `/soc`, `/soc/serial@10000000`.
    pub fn path(&self, id: NodeId) -> String {
        let mut names = Vec::new();
        let mut cur = Some(id);
        while let Some(n) = cur {
            if self.parent(n).is_none() {
                break;
            }
            names.push(self.name(n));
            cur = self.parent(n);
        }
        if names.is_empty() {
            return "/".into();
        }
        let mut path = String::new();
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        path
    }

    /// The node at an absolute path (`/` is the root); `None` if there is none.
    pub fn find(&self, path: &str) -> Option<NodeId> {
        let rest = path.strip_prefix('/')?;
        let mut cur = self.root();
        for part in rest.split('/').filter(|p| !p.is_empty()) {
            cur = self.children(cur).find(|&c| self.name(c) == part)?;
        }
        Some(cur)
    }
}

/// Iterator over a node's children.
#[derive(Debug, Clone)]
pub struct Children<'t, 'a> {
    tree: &'t Tree<'a>,
    next: u32,
}

impl Iterator for Children<'_, '_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let n = self.tree.nodes.get(self.next as usize)?;
        let id = NodeId(self.next);
        self.next = n.next_sibling;
        Some(id)
    }
}
