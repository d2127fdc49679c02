//! A Modbus TCP terminal built on tokio-modbus's server side: 65,536 holding (and identical input) registers holding
//! an event counter and an event ring laid out as the agent's default register map (PIN in two registers, time in
//! two, state in one; five per slot). Events are recorded as firmware would: into slot `counter mod ring_slots`, then
//! the counter is incremented, wrapping at 2^16 (or 2^32 with two counter registers). It can stall its answers (to
//! make the poller's timeouts fire) and counts the ring registers it was asked for.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::{ExceptionCode, Request, Response};

/// Where the simulated device keeps its events.
#[derive(Debug, Clone, Copy)]
pub struct SimLayout {
    pub counter_register: u16,
    pub counter_words: u8,
    pub ring_start: u16,
    pub ring_slots: u16,
}

impl Default for SimLayout {
    fn default() -> Self {
        Self { counter_register: 0, counter_words: 1, ring_start: 100, ring_slots: 64 }
    }
}

const SLOT: usize = 5;

struct State {
    registers: Mutex<Vec<u16>>,
    stall: AtomicBool,
    ring_reads: AtomicUsize,
    layout: SimLayout,
}

/// A running simulated Modbus terminal.
#[derive(Clone)]
pub struct ModbusSim {
    state: Arc<State>,
    pub address: SocketAddr,
}

impl ModbusSim {
    /// Starts serving on a random loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(layout: SimLayout) -> anyhow::Result<Self> {
        let state = State::new(layout);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = Server::new(listener);
        let service = SimService(state.clone());
        tokio::spawn(async move {
            let new_service = move |_peer| Ok(Some(service.clone()));
            let on_connected = move |stream, peer| {
                let new_service = new_service.clone();
                async move { accept_tcp_connection(stream, peer, new_service) }
            };
            if let Err(e) = server.serve(&on_connected, |e| tracing::debug!(error = %e, "modbus sim connection")).await
            {
                tracing::warn!(error = %e, "modbus sim stopped");
            }
        });
        Ok(Self { state, address })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u16>> {
        self.state.registers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn modulus(&self) -> u64 {
        if self.state.layout.counter_words == 2 {
            1 << 32
        } else {
            1 << 16
        }
    }

    /// The event counter.
    pub fn counter(&self) -> u64 {
        let registers = self.lock();
        let at = usize::from(self.state.layout.counter_register);
        if self.state.layout.counter_words == 2 {
            u64::from(registers[at]) << 16 | u64::from(registers[at + 1])
        } else {
            u64::from(registers[at])
        }
    }

    /// Sets the counter without recording events (a device that has been running a while).
    pub fn set_counter(&self, value: u64) {
        let value = value % self.modulus();
        let mut registers = self.lock();
        let at = usize::from(self.state.layout.counter_register);
        if self.state.layout.counter_words == 2 {
            registers[at] = (value >> 16) as u16;
            registers[at + 1] = (value & 0xFFFF) as u16;
        } else {
            registers[at] = value as u16;
        }
    }

    /// Records one event; `time` is local wall-clock time (0 seconds makes a malformed event).
    pub fn record(&self, pin: u32, time: Option<NaiveDateTime>, state: u16) {
        let counter = self.counter();
        let slot = (counter % u64::from(self.state.layout.ring_slots)) as usize;
        let seconds = time.map_or(0, |t| t.and_utc().timestamp() as u32);
        {
            let mut registers = self.lock();
            let at = usize::from(self.state.layout.ring_start) + slot * SLOT;
            registers[at..at + SLOT].copy_from_slice(&[
                (pin >> 16) as u16,
                pin as u16,
                (seconds >> 16) as u16,
                seconds as u16,
                state,
            ]);
        }
        self.set_counter(counter + 1);
    }

    /// Makes every answer wait 30 s (the poller's timeout fires first) until set back.
    pub fn set_stall(&self, stall: bool) {
        self.state.stall.store(stall, Ordering::SeqCst);
    }

    /// Ring registers read so far.
    pub fn ring_registers_read(&self) -> usize {
        self.state.ring_reads.load(Ordering::SeqCst)
    }
}

impl State {
    fn new(layout: SimLayout) -> Arc<Self> {
        Arc::new(Self {
            registers: Mutex::new(vec![0; 65_536]),
            stall: AtomicBool::new(false),
            ring_reads: AtomicUsize::new(0),
            layout,
        })
    }
}

/// A Modbus RTU terminal: the same registers served over a null-modem pair of pseudo-terminals. The agent opens
/// `agent_link`; the simulator holds the other end. Keep the returned cable alive as long as the device is needed.
///
/// # Errors
/// When the pairs or the serial stream cannot be opened.
pub fn start_rtu(
    layout: SimLayout,
    agent_link: &std::path::Path,
    device_link: &std::path::Path,
) -> anyhow::Result<(ModbusSim, crate::serial_sim::NullModem)> {
    let cable = crate::serial_sim::NullModem::plug(agent_link, device_link)?;
    let stream = tokio_serial::SerialStream::open(&tokio_serial::new(device_link.to_string_lossy(), 9600))?;
    let state = State::new(layout);
    let service = SimService(state.clone());
    tokio::spawn(async move {
        if let Err(e) = tokio_modbus::server::rtu::Server::new(stream).serve_forever(service).await {
            tracing::warn!(error = %e, "modbus RTU sim stopped");
        }
    });
    // No TCP address: the poller reaches this device through the link.
    Ok((ModbusSim { state, address: SocketAddr::from(([0, 0, 0, 0], 0)) }, cable))
}

#[derive(Clone)]
struct SimService(Arc<State>);

impl tokio_modbus::server::Service for SimService {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Result<Response, ExceptionCode>> + Send>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move {
            if state.stall.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            let (address, quantity, input) = match request {
                Request::ReadHoldingRegisters(a, q) => (a, q, false),
                Request::ReadInputRegisters(a, q) => (a, q, true),
                _ => return Err(ExceptionCode::IllegalFunction),
            };
            let start = usize::from(address);
            let end = start + usize::from(quantity);
            if quantity == 0 || quantity > 125 || end > 65_536 {
                return Err(ExceptionCode::IllegalDataAddress);
            }
            if address >= state.layout.ring_start {
                state.ring_reads.fetch_add(usize::from(quantity), Ordering::SeqCst);
            }
            let words = state.registers.lock().unwrap_or_else(|p| p.into_inner())[start..end].to_vec();
            Ok(if input { Response::ReadInputRegisters(words) } else { Response::ReadHoldingRegisters(words) })
        })
    }
}
