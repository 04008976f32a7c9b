//! Device-tree semantics: `#address-cells`/`#size-cells`, `reg`, `ranges` and address
//! translation, `status`, phandles, `interrupt-parent`, `interrupts`, `interrupts-extended`,
//! and `reg-names`/`interrupt-names`. All of it is checked once, for every node, when a
//! [`DeviceTree`] is made, so a tree that breaks a rule is rejected as a whole.

use std::collections::HashMap;

use devfd_format::Bus;
use devfd_format::model::{
    BuildError, DeviceDesc, DtInterruptDesc, DtLocation, InterruptDesc, RegionDesc,
};
use devfd_format::wire::{
    DT_PROP_INTERRUPTS, DT_PROP_REG, IRQ_AUTOMASKED, IRQ_KIND_WIRED, IRQ_LEVEL, IRQ_MASKABLE,
    MAX_DT_INTERRUPT_CELLS, REGION_READ, REGION_WRITE,
};

use crate::error::{Error, ErrorKind};
use crate::tree::{NodeId, Property, Tree};

/// `#address-cells` when a node has none (Devicetree Specification §2.3.5).
pub const DEFAULT_ADDRESS_CELLS: u32 = 2;
/// `#size-cells` when a node has none.
pub const DEFAULT_SIZE_CELLS: u32 = 1;
/// Largest `#address-cells` and `#size-cells` accepted: 128-bit numbers. Real bindings use at
/// most 3 (PCI).
pub const MAX_CELLS: u32 = 4;

/// Whether an interrupt is level- or edge-triggered, from its specifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Level-triggered (also when the specifier does not say).
    Level,
    /// Edge-triggered.
    Edge,
}

/// One entry of a node's `reg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reg<'a> {
    /// Which entry of `reg`, from 0.
    pub index: u32,
    /// The address on the parent's bus, as written (up to 4 cells).
    pub bus_address: u128,
    /// The size, or `None` when the parent's `#size-cells` is 0.
    pub size: Option<u128>,
    /// The CPU physical address after translation through every parent's `ranges`; `None`
    /// if the entry is not memory-mapped (a parent bus without `ranges`, `#size-cells = <0>`,
    /// an address no `ranges` entry covers).
    pub address: Option<u64>,
    /// The entry's name from `reg-names`.
    pub label: Option<&'a str>,
}

impl Reg<'_> {
    /// The CPU address and size of a memory-mapped entry of non-zero size: what becomes a
    /// REGION of the node's description.
    pub fn mapped(&self) -> Option<(u64, u64)> {
        let size = u64::try_from(self.size?).ok().filter(|&s| s != 0)?;
        Some((self.address?, size))
    }
}

/// One interrupt of a node (an entry of `interrupts` or `interrupts-extended`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupt<'a> {
    /// Which interrupt, from 0.
    pub index: u32,
    /// The interrupt controller (or nexus) the specifier is for.
    pub controller: NodeId,
    /// The controller's path.
    pub parent: String,
    /// The specifier cells, `#interrupt-cells` of the controller of them.
    pub cells: Vec<u32>,
    /// Level or edge, from the specifier's trigger cell.
    pub trigger: Trigger,
    /// The interrupt's name from `interrupt-names`.
    pub label: Option<&'a str>,
}

/// A node with `reg` or interrupts: what `devfd ls --dtb` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtNode<'a> {
    /// The node.
    pub id: NodeId,
    /// Its absolute path.
    pub path: String,
    /// Its name, unit address included.
    pub name: &'a str,
    /// `compatible`, most specific first (empty if absent).
    pub compatible: Vec<&'a str>,
    /// `status` as written; `"okay"` if absent.
    pub status: &'a str,
    /// `status` is `okay`, `ok` or absent.
    pub enabled: bool,
    /// The `reg` entries.
    pub regs: Vec<Reg<'a>>,
    /// The interrupts.
    pub interrupts: Vec<Interrupt<'a>>,
}

impl DtNode<'_> {
    /// Whether the node becomes a platform device description: enabled, with `compatible`
    /// (which a platform description requires, SPEC.md rule 51, and without which Linux makes
    /// no platform device either), and with a memory-mapped `reg` entry or an interrupt.
    pub fn is_device(&self) -> bool {
        self.enabled
            && !self.compatible.is_empty()
            && (self.regs.iter().any(|r| r.mapped().is_some()) || !self.interrupts.is_empty())
    }

    /// The label of the node's description: its name without the unit address.
    pub fn label(&self) -> &str {
        self.name.split('@').next().unwrap_or_default()
    }

    /// The node's platform device description (not yet written), laid out by
    /// [`DeviceDesc::lay_out`]:
    ///
    /// * DT_COMPATIBLE, and the node's name without unit address as LABEL;
    /// * one REGION per memory-mapped `reg` entry: read/write, register-like, with DT_PATH +
    ///   DT_INDEX `reg[i]`, DT_ADDRESS (the CPU address) and LABEL from `reg-names`;
    /// * one INTERRUPT per interrupt: wired, 1 vector, level ones maskable and automasked
    ///   (like VFIO's INTx), edge ones maskable, with DT_PATH + DT_INDEX `interrupts[i]`,
    ///   DT_INTERRUPT (controller and cells) and LABEL from `interrupt-names`.
    pub fn description(&self) -> Result<DeviceDesc, Error> {
        let fail = |e: BuildError| {
            let kind = ErrorKind::Describe(e);
            Error {
                kind,
                offset: None,
                node: Some(self.path.clone()),
            }
        };
        let mut d = DeviceDesc::new(Bus::Platform);
        d.compatible = self.compatible.iter().map(|s| (*s).to_owned()).collect();
        let label = self.label();
        d.label = (!label.is_empty()).then(|| label.to_owned());
        for reg in &self.regs {
            let Some((address, size)) = reg.mapped() else {
                continue;
            };
            let mut dt = DtLocation::new(self.path.clone(), DT_PROP_REG, reg.index);
            dt.address = Some(address);
            d.regions.push(RegionDesc {
                index: reg.index,
                offset: 0,
                size,
                flags: REGION_READ | REGION_WRITE,
                location: Default::default(),
                dt: Some(dt),
                label: reg.label.map(str::to_owned),
                sparse: None,
                dma_address: None,
                access_widths: None,
            });
        }
        for irq in &self.interrupts {
            let mut dt = DtLocation::new(self.path.clone(), DT_PROP_INTERRUPTS, irq.index);
            dt.interrupt = Some(DtInterruptDesc {
                controller: irq.parent.clone(),
                cells: irq.cells.clone(),
            });
            let flags = match irq.trigger {
                Trigger::Level => IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
                Trigger::Edge => IRQ_MASKABLE,
            };
            d.interrupts.push(InterruptDesc {
                index: irq.index,
                count: 1,
                kind: IRQ_KIND_WIRED,
                flags,
                control_offset: 0,
                dt: Some(dt),
                label: irq.label.map(str::to_owned),
            });
        }
        d.lay_out().map_err(|e| fail(BuildError::Write(e)))?;
        Ok(d)
    }

    /// The node's description, written and validated.
    pub fn build(&self) -> Result<Vec<u8>, Error> {
        self.description()?.build().map_err(|e| Error {
            kind: ErrorKind::Describe(e),
            offset: None,
            node: Some(self.path.clone()),
        })
    }
}

/// A `ranges` entry: `[child, child + len)` on the node's bus is `[parent, …)` on its
/// parent's.
#[derive(Debug, Clone, Copy)]
struct RangeEntry {
    child: u128,
    parent: u128,
    len: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ranges {
    /// No `ranges`: the bus's addresses are not memory-mapped.
    Absent,
    /// `ranges;`: the same addresses on both sides.
    Identity,
    /// Entries `start..end` of [`DeviceTree::ranges`].
    Map { start: u32, end: u32 },
}

/// What every node says about its children and interrupts.
#[derive(Debug, Clone, Copy)]
struct Info {
    address_cells: u8,
    size_cells: u8,
    interrupt_cells: Option<u8>,
    /// `interrupt-parent`: the phandle and the property's offset.
    interrupt_parent: Option<(u32, usize)>,
    ranges: Ranges,
    /// `device_type` is `pci` or `pciex`: `ranges` match PCI addresses by space code.
    pci: bool,
}

/// The interrupt-parent walk of a node, memoized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    Unknown,
    InProgress,
    Done(Option<NodeId>),
}

/// A device tree with its semantics checked: every node's cells, `ranges`, phandles,
/// `reg` and interrupts.
#[derive(Debug, Clone)]
pub struct DeviceTree<'a> {
    tree: Tree<'a>,
    info: Vec<Info>,
    ranges: Vec<RangeEntry>,
    phandles: HashMap<u32, NodeId>,
    nodes: Vec<DtNode<'a>>,
}

/// Reads a number of `cells` big-endian cells (at most 4) at cell `at` of `value`.
fn number(value: &[u8], at: usize, cells: u8) -> u128 {
    let mut n = 0u128;
    for i in 0..usize::from(cells) {
        let cell = crate::fdt::be32(value, at.saturating_add(i).saturating_mul(4)).unwrap_or(0);
        n = (n << 32) | u128::from(cell);
    }
    n
}

/// Whether `end` (one past the last address) fits an address space of `cells` cells.
fn fits(end: u128, cells: u8) -> bool {
    match 32u32.checked_mul(u32::from(cells)) {
        Some(bits) if bits < 128 => end <= 1u128 << bits,
        _ => true,
    }
}

/// Level or edge, from the trigger cell where the common bindings put it: cell 2 of a
/// specifier of 3 or more cells (the ARM GIC binding and those that follow it), cell 1 of a
/// 2-cell specifier. `IRQ_TYPE_EDGE_*` (1, 2, 3) is edge; anything else, level.
fn trigger(cells: &[u32]) -> Trigger {
    let flags = match cells {
        [_, _, f, ..] | [_, f] => f & 0xf,
        _ => 0,
    };
    if matches!(flags, 1..=3) {
        Trigger::Edge
    } else {
        Trigger::Level
    }
}

impl<'a> DeviceTree<'a> {
    /// Checks a blob ([`Tree::parse`]) and its semantics ([`Self::from_tree`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::from_tree(Tree::parse(bytes)?)
    }

    /// Checks the semantics of every node, rejecting (at the property's offset, naming the
    /// node): `#address-cells`/`#size-cells`/`#interrupt-cells`/`interrupt-parent`/`phandle`
    /// that are not one cell; `#address-cells` or `#size-cells` above 4 and `#interrupt-cells`
    /// above 16; `reg` or `ranges` where `#address-cells` is 0; `reg`, `ranges`, `interrupts`
    /// or `interrupts-extended` that are not a whole number of entries; `reg` and `ranges`
    /// entries that run past the end of their address space, and `reg` entries that translate
    /// past 2^64; reserved or duplicate phandles; references to phandles no node has;
    /// `interrupts-extended` naming a node without `#interrupt-cells`; interrupt-parent chains
    /// that loop or find no controller; and `compatible`, `status`, `reg-names` or
    /// `interrupt-names` that are not string lists.
    pub fn from_tree(tree: Tree<'a>) -> Result<Self, Error> {
        let mut dt = DeviceTree {
            info: Vec::with_capacity(tree.len()),
            ranges: Vec::new(),
            phandles: HashMap::new(),
            nodes: Vec::new(),
            tree,
        };
        dt.read_cells()?;
        dt.read_ranges()?;
        dt.read_nodes()?;
        Ok(dt)
    }

    fn err(&self, kind: ErrorKind, at: usize, node: NodeId) -> Error {
        Error::in_node(kind, at, self.tree.path(node))
    }

    fn info(&self, id: NodeId) -> Option<&Info> {
        self.info.get(id.index())
    }

    /// One cell, or `None` if absent; `max` bounds its value.
    fn one_cell(&self, id: NodeId, name: &'static str, max: u32) -> Result<Option<u32>, Error> {
        let Some(p) = self.tree.property(id, name) else {
            return Ok(None);
        };
        let Some(value) = p.u32() else {
            let kind = ErrorKind::BadCellsProperty {
                property: name,
                len: p.value.len(),
            };
            return Err(self.err(kind, p.offset, id));
        };
        if value > max {
            let kind = ErrorKind::CellsOutOfRange {
                property: name,
                value,
                max,
            };
            return Err(self.err(kind, p.offset, id));
        }
        Ok(Some(value))
    }

    /// Pass 1: every node's cells, phandle and interrupt-parent.
    fn read_cells(&mut self) -> Result<(), Error> {
        for id in self.tree.nodes() {
            let address = self.one_cell(id, "#address-cells", MAX_CELLS)?;
            let size = self.one_cell(id, "#size-cells", MAX_CELLS)?;
            let interrupt = self.one_cell(id, "#interrupt-cells", MAX_DT_INTERRUPT_CELLS)?;
            let interrupt_parent = self
                .one_cell(id, "interrupt-parent", u32::MAX)?
                .zip(self.tree.property(id, "interrupt-parent").map(|p| p.offset));
            for name in ["phandle", "linux,phandle"] {
                let Some(value) = self.one_cell(id, name, u32::MAX)? else {
                    continue;
                };
                let at = self.tree.property(id, name).map_or(0, |p| p.offset);
                if value == 0 || value == u32::MAX {
                    return Err(self.err(ErrorKind::BadPhandle { value }, at, id));
                }
                match self.phandles.get(&value) {
                    Some(&other) if other != id => {
                        let kind = ErrorKind::DuplicatePhandle {
                            phandle: value,
                            other: self.tree.path(other),
                        };
                        return Err(self.err(kind, at, id));
                    }
                    _ => {
                        self.phandles.insert(value, id);
                    }
                }
            }
            let pci = self
                .tree
                .property(id, "device_type")
                .is_some_and(|p| p.value == b"pci\0" || p.value == b"pciex\0");
            self.info.push(Info {
                address_cells: address.unwrap_or(DEFAULT_ADDRESS_CELLS) as u8,
                size_cells: size.unwrap_or(DEFAULT_SIZE_CELLS) as u8,
                interrupt_cells: interrupt.map(|n| n as u8),
                interrupt_parent,
                ranges: Ranges::Absent,
                pci,
            });
        }
        Ok(())
    }

    /// Pass 2: every node's `ranges`, checked against its and its parent's cells.
    fn read_ranges(&mut self) -> Result<(), Error> {
        for id in self.tree.nodes() {
            let Some(parent) = self.tree.parent(id) else {
                continue;
            };
            let Some(p) = self.tree.property(id, "ranges").copied() else {
                continue;
            };
            let (Some(me), Some(up)) = (self.info(id).copied(), self.info(parent).copied()) else {
                continue;
            };
            if p.value.is_empty() {
                self.set_ranges(id, Ranges::Identity);
                continue;
            }
            let (cac, pac, sc) = (me.address_cells, up.address_cells, me.size_cells);
            if cac == 0 {
                let kind = ErrorKind::ZeroAddressCells { property: "ranges" };
                return Err(self.err(kind, p.offset, id));
            }
            let cells = usize::from(cac)
                .saturating_add(usize::from(pac))
                .saturating_add(usize::from(sc));
            let unit = cells.saturating_mul(4);
            if unit == 0 || !p.value.len().is_multiple_of(unit) {
                let kind = ErrorKind::BadLength {
                    property: "ranges",
                    len: p.value.len(),
                    unit,
                    why: format!(
                        "#address-cells {cac} + parent #address-cells {pac} + #size-cells {sc}"
                    ),
                };
                return Err(self.err(kind, p.offset, id));
            }
            let start = self.ranges.len() as u32;
            for (entry, chunk) in (0u32..).zip(p.value.chunks_exact(unit)) {
                let child = number(chunk, 0, cac);
                let parent_address = number(chunk, usize::from(cac), pac);
                let len = number(chunk, usize::from(cac).saturating_add(usize::from(pac)), sc);
                let child_ok = child.checked_add(len).is_some_and(|e| fits(e, cac));
                let parent_ok = parent_address
                    .checked_add(len)
                    .is_some_and(|e| fits(e, pac));
                if !child_ok || !parent_ok {
                    let bits = 32u32.saturating_mul(u32::from(if child_ok { pac } else { cac }));
                    let kind = ErrorKind::Overflow {
                        property: "ranges",
                        entry,
                        bits,
                    };
                    return Err(self.err(kind, p.offset, id));
                }
                self.ranges.push(RangeEntry {
                    child,
                    parent: parent_address,
                    len,
                });
            }
            let end = self.ranges.len() as u32;
            self.set_ranges(id, Ranges::Map { start, end });
        }
        Ok(())
    }

    fn set_ranges(&mut self, id: NodeId, ranges: Ranges) {
        if let Some(info) = self.info.get_mut(id.index()) {
            info.ranges = ranges;
        }
    }

    /// Translates `address` on the bus of node `bus` (the parent of the node whose `reg` it
    /// is) to a CPU physical address, through the `ranges` of `bus` and of every ancestor.
    pub fn translate(&self, bus: NodeId, address: u128) -> Option<u64> {
        let mut bus = bus;
        let mut a = address;
        // Each step goes one level up, so this ends within the tree's depth.
        while let Some(up) = self.tree.parent(bus) {
            let info = self.info(bus)?;
            match info.ranges {
                Ranges::Absent => return None,
                Ranges::Identity => {}
                Ranges::Map { start, end } => {
                    let entries = self.ranges.get(start as usize..end as usize)?;
                    a = entries
                        .iter()
                        .find_map(|e| map_entry(e, a, info.pci && info.address_cells == 3))?;
                }
            }
            if !fits(a.saturating_add(1), self.info(up)?.address_cells) {
                return None;
            }
            bus = up;
        }
        u64::try_from(a).ok()
    }

    /// A string-list property, checked.
    fn strings(&self, id: NodeId, name: &'static str) -> Result<Option<Vec<&'a str>>, Error> {
        let Some(p) = self.tree.property(id, name) else {
            return Ok(None);
        };
        match p.strings() {
            Some(list) => Ok(Some(list)),
            None => Err(self.err(ErrorKind::BadString { property: name }, p.offset, id)),
        }
    }

    /// Pass 3: every node with `reg` or interrupts.
    fn read_nodes(&mut self) -> Result<(), Error> {
        let mut walks = vec![Walk::Unknown; self.tree.len()];
        let mut paths: HashMap<NodeId, String> = HashMap::new();
        for id in self.tree.nodes() {
            let has_reg = self.tree.parent(id).is_some() && self.tree.property(id, "reg").is_some();
            let has_irq = self.tree.property(id, "interrupts").is_some()
                || self.tree.property(id, "interrupts-extended").is_some();
            if !has_reg && !has_irq {
                continue;
            }
            let regs = self.regs(id)?;
            let interrupts = self.interrupts(id, &mut walks, &mut paths)?;
            let compatible = self.strings(id, "compatible")?.unwrap_or_default();
            let status = match self.tree.property(id, "status") {
                None => "okay",
                Some(p) => p.string().ok_or_else(|| {
                    self.err(ErrorKind::BadString { property: "status" }, p.offset, id)
                })?,
            };
            let node = DtNode {
                id,
                path: self.tree.path(id),
                name: self.tree.name(id),
                compatible,
                enabled: matches!(status, "okay" | "ok"),
                status,
                regs,
                interrupts,
            };
            self.nodes.push(node);
        }
        Ok(())
    }

    fn regs(&self, id: NodeId) -> Result<Vec<Reg<'a>>, Error> {
        let (Some(parent), Some(p)) = (self.tree.parent(id), self.tree.property(id, "reg")) else {
            return Ok(Vec::new());
        };
        let Some(bus) = self.info(parent).copied() else {
            return Ok(Vec::new());
        };
        let (ac, sc) = (bus.address_cells, bus.size_cells);
        if ac == 0 {
            let kind = ErrorKind::ZeroAddressCells { property: "reg" };
            return Err(self.err(kind, p.offset, id));
        }
        let unit = usize::from(ac)
            .saturating_add(usize::from(sc))
            .saturating_mul(4);
        if !p.value.len().is_multiple_of(unit) {
            let kind = ErrorKind::BadLength {
                property: "reg",
                len: p.value.len(),
                unit,
                why: format!("parent #address-cells {ac} + #size-cells {sc}"),
            };
            return Err(self.err(kind, p.offset, id));
        }
        let names = self.strings(id, "reg-names")?.unwrap_or_default();
        let mut regs = Vec::with_capacity(p.value.len().checked_div(unit).unwrap_or(0));
        for (index, chunk) in (0u32..).zip(p.value.chunks_exact(unit)) {
            let bus_address = number(chunk, 0, ac);
            let size = (sc != 0).then(|| number(chunk, usize::from(ac), sc));
            let overflow = |bits| {
                let kind = ErrorKind::Overflow {
                    property: "reg",
                    entry: index,
                    bits,
                };
                self.err(kind, p.offset, id)
            };
            let end = bus_address.checked_add(size.unwrap_or(0));
            if !end.is_some_and(|e| fits(e, ac)) {
                return Err(overflow(32u32.saturating_mul(u32::from(ac))));
            }
            let address = self.translate(parent, bus_address);
            if let (Some(a), Some(s)) = (address, size)
                && u128::from(a).saturating_add(s) > 1u128 << 64
            {
                return Err(overflow(64));
            }
            regs.push(Reg {
                index,
                bus_address,
                size,
                address,
                label: names.get(index as usize).copied(),
            });
        }
        Ok(regs)
    }

    /// The node's interrupt parent (Linux's `of_irq_find_parent`): its `interrupt-parent`, else
    /// its tree parent; a node found without `#interrupt-cells` is passed through the same
    /// way. Memoized in `walks`; a chain that comes back to a node it passed is a loop.
    fn interrupt_parent(&self, id: NodeId, walks: &mut [Walk]) -> Result<Option<NodeId>, Error> {
        let mut chain: Vec<NodeId> = Vec::new();
        let mut cur = id;
        let result = loop {
            match walks.get(cur.index()).copied() {
                Some(Walk::Done(r)) => break r,
                Some(Walk::InProgress) => {
                    let kind = ErrorKind::InterruptParentLoop {
                        via: self.tree.path(cur),
                    };
                    return Err(Error {
                        kind,
                        offset: self.info(cur).and_then(|i| i.interrupt_parent).map(|p| p.1),
                        node: Some(self.tree.path(id)),
                    });
                }
                _ => {}
            }
            if let Some(w) = walks.get_mut(cur.index()) {
                *w = Walk::InProgress;
            }
            chain.push(cur);
            let next = match self.info(cur).and_then(|i| i.interrupt_parent) {
                Some((phandle, at)) => match self.phandles.get(&phandle) {
                    Some(&n) => Some(n),
                    None => {
                        let kind = ErrorKind::UnknownPhandle {
                            property: "interrupt-parent",
                            phandle,
                        };
                        return Err(self.err(kind, at, cur));
                    }
                },
                None => self.tree.parent(cur),
            };
            match next {
                None => break None,
                Some(n) if self.info(n).is_some_and(|i| i.interrupt_cells.is_some()) => {
                    break Some(n);
                }
                Some(n) => cur = n,
            }
        };
        for n in chain {
            if let Some(w) = walks.get_mut(n.index()) {
                *w = Walk::Done(result);
            }
        }
        Ok(result)
    }

    fn path_of(&self, id: NodeId, paths: &mut HashMap<NodeId, String>) -> String {
        paths
            .entry(id)
            .or_insert_with(|| self.tree.path(id))
            .clone()
    }

    fn interrupts(
        &self,
        id: NodeId,
        walks: &mut [Walk],
        paths: &mut HashMap<NodeId, String>,
    ) -> Result<Vec<Interrupt<'a>>, Error> {
        let names = self.strings(id, "interrupt-names")?.unwrap_or_default();
        let mut list = Vec::new();
        let mut push = |list: &mut Vec<Interrupt<'a>>, controller: NodeId, cells: Vec<u32>| {
            let index = list.len() as u32;
            list.push(Interrupt {
                index,
                controller,
                parent: self.path_of(controller, paths),
                trigger: trigger(&cells),
                cells,
                label: names.get(index as usize).copied(),
            });
        };
        if let Some(p) = self.tree.property(id, "interrupts-extended") {
            let Some(cells) = p.cells() else {
                return Err(self.bad_length(p, 4, "phandle + specifier cells".into(), id));
            };
            let cells: Vec<u32> = cells.collect();
            let mut rest = cells.as_slice();
            while let Some((&phandle, tail)) = rest.split_first() {
                let Some(&controller) = self.phandles.get(&phandle) else {
                    let kind = ErrorKind::UnknownPhandle {
                        property: "interrupts-extended",
                        phandle,
                    };
                    return Err(self.err(kind, p.offset, id));
                };
                let Some(n) = self.info(controller).and_then(|i| i.interrupt_cells) else {
                    let kind = ErrorKind::NotInterruptController {
                        property: "interrupts-extended",
                        target: self.tree.path(controller),
                    };
                    return Err(self.err(kind, p.offset, id));
                };
                let Some((spec, tail)) = tail.split_at_checked(usize::from(n)) else {
                    let why = format!(
                        "phandle + #interrupt-cells {n} of {}",
                        self.tree.path(controller)
                    );
                    return Err(self.bad_length(
                        p,
                        4usize.saturating_mul(usize::from(n) + 1),
                        why,
                        id,
                    ));
                };
                push(&mut list, controller, spec.to_vec());
                rest = tail;
            }
            return Ok(list);
        }
        let Some(p) = self.tree.property(id, "interrupts") else {
            return Ok(list);
        };
        let Some(controller) = self.interrupt_parent(id, walks)? else {
            return Err(self.err(ErrorKind::NoInterruptParent, p.offset, id));
        };
        let n = self
            .info(controller)
            .and_then(|i| i.interrupt_cells)
            .unwrap_or(0);
        if n == 0 {
            if p.value.is_empty() {
                return Ok(list);
            }
            let kind = ErrorKind::ZeroInterruptCells {
                controller: self.tree.path(controller),
            };
            return Err(self.err(kind, p.offset, id));
        }
        let unit = usize::from(n).saturating_mul(4);
        if !p.value.len().is_multiple_of(unit) {
            let why = format!("#interrupt-cells {n} of {}", self.tree.path(controller));
            return Err(self.bad_length(p, unit, why, id));
        }
        for chunk in p.value.chunks_exact(unit) {
            let spec: Vec<u32> = chunk
                .chunks_exact(4)
                .map(|c| c.try_into().map_or(0, u32::from_be_bytes))
                .collect();
            push(&mut list, controller, spec);
        }
        Ok(list)
    }

    fn bad_length(&self, p: &Property<'_>, unit: usize, why: String, id: NodeId) -> Error {
        let property = match p.name {
            "interrupts-extended" => "interrupts-extended",
            _ => "interrupts",
        };
        let kind = ErrorKind::BadLength {
            property,
            len: p.value.len(),
            unit,
            why,
        };
        self.err(kind, p.offset, id)
    }

    /// The checked tree.
    pub fn tree(&self) -> &Tree<'a> {
        &self.tree
    }

    /// Every node with `reg` (the root's aside) or interrupts, in document order, enabled or
    /// not.
    pub fn nodes(&self) -> &[DtNode<'a>] {
        &self.nodes
    }

    /// The node at `path` among [`Self::nodes`].
    pub fn node(&self, path: &str) -> Option<&DtNode<'a>> {
        let id = self.tree.find(path)?;
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The nodes that become platform device descriptions ([`DtNode::is_device`]).
    pub fn devices(&self) -> impl Iterator<Item = &DtNode<'a>> {
        self.nodes.iter().filter(|n| n.is_device())
    }

    /// The description of every device, written and validated, in document order.
    pub fn describe_all(&self) -> Result<Vec<Vec<u8>>, Error> {
        self.devices().map(DtNode::build).collect()
    }

    /// A node's `#address-cells` (its own, or the default 2).
    pub fn address_cells(&self, id: NodeId) -> u32 {
        self.info(id)
            .map_or(DEFAULT_ADDRESS_CELLS, |i| u32::from(i.address_cells))
    }

    /// A node's `#size-cells` (its own, or the default 1).
    pub fn size_cells(&self, id: NodeId) -> u32 {
        self.info(id)
            .map_or(DEFAULT_SIZE_CELLS, |i| u32::from(i.size_cells))
    }

    /// A node's `#interrupt-cells`, if it is an interrupt controller or nexus.
    pub fn interrupt_cells(&self, id: NodeId) -> Option<u32> {
        self.info(id)?.interrupt_cells.map(u32::from)
    }

    /// The node with this phandle.
    pub fn by_phandle(&self, phandle: u32) -> Option<NodeId> {
        self.phandles.get(&phandle).copied()
    }
}

/// Maps `a` through one `ranges` entry; PCI buses compare the space code of phys.hi and the
/// 64-bit address, as Linux's `of_bus_pci_map` does.
fn map_entry(e: &RangeEntry, a: u128, pci: bool) -> Option<u128> {
    if pci {
        let space = |n: u128| ((n >> 88) & 3) as u8;
        let low = |n: u128| n & u128::from(u64::MAX);
        if space(a) != space(e.child) {
            return None;
        }
        let offset = low(a).checked_sub(low(e.child))?;
        return (offset < e.len)
            .then(|| e.parent.checked_add(offset))
            .flatten();
    }
    let offset = a.checked_sub(e.child)?;
    (offset < e.len)
        .then(|| e.parent.checked_add(offset))
        .flatten()
}
