-- Wireshark / tshark dissector for the proxyha heartbeat: IP protocol 253,
-- format version 1, as specified in docs/heartbeat.md (section 2). Every
-- field of the fixed header, the name, the membership announcement and its
-- entries, and the HMAC-SHA256 trailer is shown; every rule of section 2.4
-- that proxyha's parser enforces is checked and reported as an expert error.
-- With the group key in the preferences (hex), the HMAC is verified too.
--
--   tshark -X lua_script:proxyha.lua -r capture.pcap -V
--   tshark -X lua_script:proxyha.lua -o proxyha.key:$(xxd -p -c 256 KEYFILE) ...
--   Wireshark: copy to ~/.local/lib/wireshark/plugins/ (display filter: proxyha)
--
-- Bit operations use Wireshark's own BitOp library (the global `bit`, in
-- every Wireshark with Lua: 5.2 up to 5.4), not Lua 5.2's bit32, which Lua
-- 5.4 no longer has. BitOp results are signed 32-bit numbers, hence tobit
-- after each addition.

local proto = Proto("proxyha", "proxyha heartbeat")

local MAGIC = 0x50584842 -- "PXHB"
local VERSION = 1
local HEADER_LEN = 76
local MAX_NAME_LEN = 32
local MAX_PORTS = 16
local MAX_MEMBERS = 64
local ANNOUNCE_HEADER_LEN = 12
local ENTRY_LEN = 18
local HMAC_LEN = 32
local MAX_LOAD = 1000
local FLAG_AUTH = 0x0001
local FLAG_ANNOUNCE = 0x0002

local TYPES = { [1] = "Request", [2] = "Reply" }
local ROLES = { [0] = "Scanning node", [1] = "Director" }
local STATES = {
    [0] = "UNKNOWN", [1] = "OK", [2] = "NETWORK", [3] = "REDUNDANT",
    [4] = "FAILED", [5] = "DRAINING",
}
-- Which codes each state field accepts (docs/heartbeat.md 2.1).
local SCANNING_STATES = { [0] = true, [1] = true, [4] = true, [5] = true }
local DIRECTOR_STATES = { [0] = true, [2] = true, [3] = true }

local f = {
    magic = ProtoField.uint32("proxyha.magic", "Magic", base.HEX),
    version = ProtoField.uint8("proxyha.version", "Version", base.DEC),
    type = ProtoField.uint8("proxyha.type", "Type", base.DEC, TYPES),
    flags = ProtoField.uint16("proxyha.flags", "Flags", base.HEX),
    flag_auth = ProtoField.bool("proxyha.flags.auth", "AUTH (HMAC trailer present)", 16, nil, FLAG_AUTH),
    flag_announce = ProtoField.bool("proxyha.flags.announce", "ANNOUNCE (membership announcement present)", 16, nil, FLAG_ANNOUNCE),
    flag_reserved = ProtoField.uint16("proxyha.flags.reserved", "Reserved flag bits", base.HEX, nil, 0xfffc),
    length = ProtoField.uint16("proxyha.length", "Length", base.DEC),
    lbid = ProtoField.uint16("proxyha.lbid", "LBID", base.DEC),
    node_id = ProtoField.uint32("proxyha.node_id", "Node ID", base.HEX),
    sequence = ProtoField.uint64("proxyha.sequence", "Sequence", base.DEC),
    timestamp = ProtoField.uint64("proxyha.timestamp", "Timestamp (ms since the Unix epoch)", base.DEC),
    time = ProtoField.absolute_time("proxyha.time", "Timestamp", base.UTC),
    ipv4 = ProtoField.ipv4("proxyha.ipv4", "Management IPv4"),
    ipv6 = ProtoField.ipv6("proxyha.ipv6", "Management IPv6"),
    mac = ProtoField.ether("proxyha.mac", "Management MAC"),
    role = ProtoField.uint8("proxyha.role", "Role", base.DEC, ROLES),
    priority = ProtoField.uint8("proxyha.priority", "Priority", base.DEC),
    state = ProtoField.uint8("proxyha.state", "Scanning state", base.DEC, STATES),
    director_state = ProtoField.uint8("proxyha.director_state", "Director state", base.DEC, STATES),
    port_count = ProtoField.uint8("proxyha.port_count", "Port count", base.DEC),
    name_len = ProtoField.uint8("proxyha.name_len", "Name length", base.DEC),
    ports_up = ProtoField.uint16("proxyha.ports_up", "Ports up", base.HEX),
    port_up = ProtoField.bool("proxyha.port_up", "Port answered"),
    load = ProtoField.uint16("proxyha.load", "Load (per mille)", base.DEC),
    connections = ProtoField.uint32("proxyha.connections", "Connections", base.DEC),
    capacity = ProtoField.uint32("proxyha.capacity", "Capacity", base.DEC),
    name = ProtoField.string("proxyha.name", "Name", base.UNICODE),
    announcement = ProtoField.none("proxyha.announcement", "Membership announcement"),
    generation = ProtoField.uint64("proxyha.generation", "Generation", base.DEC),
    count = ProtoField.uint16("proxyha.count", "Entry count", base.DEC),
    reserved = ProtoField.uint16("proxyha.reserved", "Reserved", base.HEX),
    entry = ProtoField.none("proxyha.entry", "Entry"),
    entry_id = ProtoField.uint32("proxyha.entry.node_id", "Node ID", base.HEX),
    entry_ipv4 = ProtoField.ipv4("proxyha.entry.ipv4", "IPv4"),
    entry_mac = ProtoField.ether("proxyha.entry.mac", "MAC"),
    entry_weight = ProtoField.uint32("proxyha.entry.weight", "Weight", base.DEC, nil, 0x7fffffff),
    entry_hold = ProtoField.bool("proxyha.entry.hold", "HOLD (STALE: keeps its share for established flows, no new ones)", 32, nil, 0x80000000),
    hmac = ProtoField.bytes("proxyha.hmac", "HMAC-SHA256"),
    hmac_status = ProtoField.string("proxyha.hmac.status", "HMAC check"),
    trailing = ProtoField.bytes("proxyha.trailing", "Bytes after Length (ignored)"),
}
local field_list = {}
for _, v in pairs(f) do field_list[#field_list + 1] = v end
proto.fields = field_list

local e = {
    malformed = ProtoExpert.new("proxyha.malformed", "Malformed heartbeat",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_value = ProtoExpert.new("proxyha.bad_value", "Value that proxyha rejects",
        expert.group.PROTOCOL, expert.severity.ERROR),
    bad_hmac = ProtoExpert.new("proxyha.bad_hmac", "HMAC does not verify with the configured key",
        expert.group.SECURITY, expert.severity.ERROR),
    unsigned = ProtoExpert.new("proxyha.unsigned", "Unauthenticated heartbeat (heartbeat.insecure)",
        expert.group.SECURITY, expert.severity.NOTE),
    trailing = ProtoExpert.new("proxyha.trailing.note", "Bytes after Length, ignored by proxyha",
        expert.group.PROTOCOL, expert.severity.NOTE),
}
proto.experts = { e.malformed, e.bad_value, e.bad_hmac, e.unsigned, e.trailing }

proto.prefs.key = Pref.string("Group key (hex)", "",
    "The heartbeat key file's bytes in hex (xxd -p -c 256 /etc/proxyha/GROUP.key); " ..
    "when set, the HMAC trailer is verified")

---------------------------------------------------------------------------
-- SHA-256 (FIPS 180-4) and HMAC (RFC 2104) on Lua strings, for the check.

local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rrotate, rshift, lshift, tobit = bit.ror, bit.rshift, bit.lshift, bit.tobit

local K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function sha256(msg)
    local h = {}
    for i, v in ipairs({ 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }) do
        h[i] = tobit(v)
    end
    local bits = #msg * 8
    msg = msg .. "\128" .. string.rep("\0", (55 - #msg) % 64)
    -- The 64-bit length; messages here are far below 2^32 bits.
    msg = msg .. "\0\0\0\0" .. string.char(
        band(rshift(bits, 24), 0xff), band(rshift(bits, 16), 0xff),
        band(rshift(bits, 8), 0xff), band(bits, 0xff))
    local w = {}
    for chunk = 1, #msg, 64 do
        for i = 0, 15 do
            local a, b, c, d = msg:byte(chunk + i * 4, chunk + i * 4 + 3)
            w[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
        end
        for i = 16, 63 do
            local s0 = bxor(rrotate(w[i - 15], 7), rrotate(w[i - 15], 18), rshift(w[i - 15], 3))
            local s1 = bxor(rrotate(w[i - 2], 17), rrotate(w[i - 2], 19), rshift(w[i - 2], 10))
            w[i] = tobit(w[i - 16] + s0 + w[i - 7] + s1)
        end
        local a, b, c, d, e5, f5, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
        for i = 0, 63 do
            local S1 = bxor(rrotate(e5, 6), rrotate(e5, 11), rrotate(e5, 25))
            local ch = bxor(band(e5, f5), band(bnot(e5), g))
            local t1 = hh + S1 + ch + K[i + 1] + w[i]
            local S0 = bxor(rrotate(a, 2), rrotate(a, 13), rrotate(a, 22))
            local maj = bxor(band(a, b), band(a, c), band(b, c))
            local t2 = S0 + maj
            hh, g, f5, e5 = g, f5, e5, tobit(d + t1)
            d, c, b, a = c, b, a, tobit(t1 + t2)
        end
        h[1] = tobit(h[1] + a); h[2] = tobit(h[2] + b)
        h[3] = tobit(h[3] + c); h[4] = tobit(h[4] + d)
        h[5] = tobit(h[5] + e5); h[6] = tobit(h[6] + f5)
        h[7] = tobit(h[7] + g); h[8] = tobit(h[8] + hh)
    end
    local out = {}
    for i = 1, 8 do
        out[i] = string.char(band(rshift(h[i], 24), 0xff), band(rshift(h[i], 16), 0xff),
            band(rshift(h[i], 8), 0xff), band(h[i], 0xff))
    end
    return table.concat(out)
end

local function xor_pad(key, byte)
    local out = {}
    for i = 1, 64 do out[i] = string.char(bxor(key:byte(i) or 0, byte)) end
    return table.concat(out)
end

local function hmac_sha256(key, msg)
    if #key > 64 then key = sha256(key) end
    return sha256(xor_pad(key, 0x5c) .. sha256(xor_pad(key, 0x36) .. msg))
end

-- The key preference as bytes, or nil (unset) or false (not hex).
local function configured_key()
    local hex = (proto.prefs.key or ""):gsub("%s", "")
    if hex == "" then return nil end
    if #hex % 2 ~= 0 or hex:find("[^%x]") then return false end
    return (hex:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

---------------------------------------------------------------------------

-- Whether the bytes are UTF-8 as Rust's str::from_utf8 accepts it (no
-- overlong forms, no surrogates, nothing above U+10FFFF).
local function valid_utf8(s)
    local i, n = 1, #s
    while i <= n do
        local c = s:byte(i)
        local len, lo, hi = 0, 0x80, 0xbf
        if c < 0x80 then len = 1
        elseif c >= 0xc2 and c <= 0xdf then len = 2
        elseif c >= 0xe0 and c <= 0xef then
            len = 3
            if c == 0xe0 then lo = 0xa0 elseif c == 0xed then hi = 0x9f end
        elseif c >= 0xf0 and c <= 0xf4 then
            len = 4
            if c == 0xf0 then lo = 0x90 elseif c == 0xf4 then hi = 0x8f end
        else
            return false
        end
        if i + len - 1 > n then return false end
        for k = 1, len - 1 do
            local b = s:byte(i + k)
            local l, h = 0x80, 0xbf
            if k == 1 then l, h = lo, hi end
            if b < l or b > h then return false end
        end
        i = i + len
    end
    return true
end

local function mac_text(range)
    local b = { range:bytes():raw():byte(1, 6) }
    return string.format("%02x:%02x:%02x:%02x:%02x:%02x", b[1], b[2], b[3], b[4], b[5], b[6])
end

-- The fixed header: offset, size, field. Checked against the buffer one by one.
local HEADER = {
    { 0, 4, "magic" }, { 4, 1, "version" }, { 5, 1, "type" }, { 6, 2, "flags" },
    { 8, 2, "length" }, { 10, 2, "lbid" }, { 12, 4, "node_id" }, { 16, 8, "sequence" },
    { 24, 8, "timestamp" }, { 32, 4, "ipv4" }, { 36, 16, "ipv6" }, { 52, 6, "mac" },
    { 58, 1, "role" }, { 59, 1, "priority" }, { 60, 1, "state" }, { 61, 1, "director_state" },
    { 62, 1, "port_count" }, { 63, 1, "name_len" }, { 64, 2, "ports_up" }, { 66, 2, "load" },
    { 68, 4, "connections" }, { 72, 4, "capacity" },
}

local function add_header(tvb, t)
    local items = {}
    for _, h in ipairs(HEADER) do
        local off, size, name = h[1], h[2], h[3]
        if off + size > tvb:len() then
            t:add_proto_expert_info(e.malformed, string.format(
                "truncated: %d bytes, the fixed header is %d", tvb:len(), HEADER_LEN))
            return nil
        end
        local it = t:add(f[name], tvb(off, size))
        items[name] = it
        if name == "flags" then
            it:add(f.flag_auth, tvb(off, size))
            it:add(f.flag_announce, tvb(off, size))
            it:add(f.flag_reserved, tvb(off, size))
        elseif name == "timestamp" then
            local ms = tvb(off, size):uint64()
            local secs = math.floor((ms / 1000):tonumber())
            local nsecs = math.floor((ms % 1000):tonumber()) * 1000000
            t:add(f.time, tvb(off, size), NSTime.new(secs, nsecs)):set_generated()
        end
    end
    return items
end

-- Checks of docs/heartbeat.md 2.4 on the header values; returns nothing.
local function check_header(tvb, items)
    local function bad(name, text) items[name]:add_proto_expert_info(e.bad_value, text) end
    if tvb(4, 1):uint() ~= VERSION then bad("version", "unknown version (proxyha speaks 1)") end
    if not TYPES[tvb(5, 1):uint()] then bad("type", "unknown message type") end
    if bit.band(tvb(6, 2):uint(), 0xfffc) ~= 0 then bad("flags", "unknown flag bits set") end
    if not ROLES[tvb(58, 1):uint()] then bad("role", "unknown role") end
    if not SCANNING_STATES[tvb(60, 1):uint()] then
        bad("state", "not a scanning-side state (UNKNOWN, OK, FAILED, DRAINING)")
    end
    if not DIRECTOR_STATES[tvb(61, 1):uint()] then
        bad("director_state", "not a director state (UNKNOWN, NETWORK, REDUNDANT)")
    end
    local ports = tvb(62, 1):uint()
    if ports > MAX_PORTS then bad("port_count", "more than 16 ports") end
    if tvb(63, 1):uint() > MAX_NAME_LEN then bad("name_len", "name longer than 32 bytes") end
    local mask = ports >= 16 and 0xffff or (bit.lshift(1, ports) - 1)
    if bit.band(tvb(64, 2):uint(), bit.bnot(mask)) ~= 0 then
        bad("ports_up", "bits set at or above the port count")
    end
    if tvb(66, 2):uint() > MAX_LOAD then bad("load", "load above 1000 per mille") end
end

local function add_ports(tvb, item)
    local count = math.min(tvb(62, 1):uint(), MAX_PORTS)
    local bits = tvb(64, 2):uint()
    local up = 0
    for i = 0, count - 1 do
        local on = bit.band(bits, bit.lshift(1, i)) ~= 0
        if on then up = up + 1 end
        item:add(f.port_up, tvb(64, 2), on):set_text(string.format(
            "Port %d (port redirect %d in config order): %s", i, i + 1, on and "up" or "down"))
    end
    item:append_text(string.format(" (%d of %d up)", up, count))
end

local function add_announcement(tvb, t, base, len)
    local at = t:add(f.announcement, tvb(base, len - base))
    at:add(f.generation, tvb(base, 8))
    at:add(f.count, tvb(base + 8, 2))
    local res = at:add(f.reserved, tvb(base + 10, 2))
    if tvb(base + 10, 2):uint() ~= 0 then
        res:add_proto_expert_info(e.bad_value, "reserved word is not 0")
    end
    local count = tvb(base + 8, 2):uint()
    for i = 0, count - 1 do
        local o = base + ANNOUNCE_HEADER_LEN + i * ENTRY_LEN
        local id = tvb(o, 4):uint()
        local raw = tvb(o + 14, 4):uint()
        local hold = raw >= 0x80000000
        local weight = hold and (raw - 0x80000000) or raw
        local et = at:add(f.entry, tvb(o, ENTRY_LEN))
        et:set_text(string.format("Entry %d: node %08x, %s, %s, weight %d%s", i, id,
            tostring(tvb(o + 4, 4):ipv4()), mac_text(tvb(o + 8, 6)), weight,
            hold and " (held: STALE)" or (weight == 0 and " (draining)" or "")))
        et:add(f.entry_id, tvb(o, 4))
        et:add(f.entry_ipv4, tvb(o + 4, 4))
        et:add(f.entry_mac, tvb(o + 8, 6))
        local wt = et:add(f.entry_weight, tvb(o + 14, 4))
        if weight == 0 and not hold then wt:append_text(" (draining: keeps its flows, gets no new ones)") end
        et:add(f.entry_hold, tvb(o + 14, 4))
    end
    at:append_text(string.format(": generation %s, %d entries",
        tostring(tvb(base, 8):uint64()), count))
    return count
end

function proto.dissector(tvb, pinfo, tree)
    local buflen = tvb:len()
    -- Someone else's experiment on protocol 253: leave it to the data dissector.
    if buflen < 4 or tvb(0, 4):uint() ~= MAGIC then return 0 end
    pinfo.cols.protocol = "PROXYHA"

    local t = tree:add(proto, tvb())
    local items = add_header(tvb, t)
    if not items then
        pinfo.cols.info = "proxyha heartbeat (truncated)"
        return buflen
    end
    check_header(tvb, items)
    add_ports(tvb, items.ports_up)

    local flags = tvb(6, 2):uint()
    local auth = bit.band(flags, FLAG_AUTH) ~= 0
    local announce = bit.band(flags, FLAG_ANNOUNCE) ~= 0
    local len = tvb(8, 2):uint()
    local name_len = tvb(63, 1):uint()
    local kind = TYPES[tvb(5, 1):uint()] or "Unknown type"
    local name = ""

    -- The length rules: at least the header, within the buffer.
    if len < HEADER_LEN or len > buflen then
        items.length:add_proto_expert_info(e.malformed, string.format(
            "length %d: must be %d..%d (the IP payload)", len, HEADER_LEN, buflen))
        pinfo.cols.info = string.format("proxyha %s (malformed length)", kind)
        return buflen
    end
    t:set_len(len)
    local expected = HEADER_LEN + name_len
    if name_len <= MAX_NAME_LEN and expected <= len then
        if name_len > 0 then
            local raw = tvb(HEADER_LEN, name_len):raw()
            local it = t:add(f.name, tvb(HEADER_LEN, name_len), tvb(HEADER_LEN, name_len):string(ENC_UTF_8))
            if valid_utf8(raw) then
                name = raw
            else
                it:add_proto_expert_info(e.bad_value, "name is not UTF-8")
                name = "(not UTF-8)"
            end
        end
        if announce then
            local base = expected
            if base + ANNOUNCE_HEADER_LEN > len then
                items.length:add_proto_expert_info(e.malformed, "length leaves no room for the announcement")
                return buflen
            end
            local count = tvb(base + 8, 2):uint()
            if count > MAX_MEMBERS then
                t:add_proto_expert_info(e.malformed, string.format("%d entries: at most 64", count))
                return buflen
            end
            expected = base + ANNOUNCE_HEADER_LEN + count * ENTRY_LEN
            if expected > len then
                items.length:add_proto_expert_info(e.malformed, string.format(
                    "length %d is too short for %d entries", len, count))
                return buflen
            end
            add_announcement(tvb, t, base, expected)
        end
    end
    if auth then expected = expected + HMAC_LEN end
    if expected ~= len then
        items.length:add_proto_expert_info(e.malformed, string.format(
            "length %d disagrees with the contents (%d bytes)", len, expected))
        pinfo.cols.info = string.format("proxyha %s (malformed length)", kind)
        return buflen
    end

    local hmac_text = "unsigned"
    if auth then
        local hi = t:add(f.hmac, tvb(len - HMAC_LEN, HMAC_LEN))
        local key = configured_key()
        local status
        if key == nil then
            status = "not checked (no key in the proxyha.key preference)"
            hmac_text = "AUTH"
        elseif key == false then
            status = "not checked (the proxyha.key preference is not hex)"
            hmac_text = "AUTH"
        elseif hmac_sha256(key, tvb(0, len - HMAC_LEN):raw()) == tvb(len - HMAC_LEN, HMAC_LEN):raw() then
            status = "correct"
            hmac_text = "AUTH ok"
        else
            status = "incorrect"
            hmac_text = "AUTH BAD"
            hi:add_proto_expert_info(e.bad_hmac)
        end
        hi:add(f.hmac_status, tvb(len - HMAC_LEN, HMAC_LEN), status):set_generated()
    else
        items.flags:add_proto_expert_info(e.unsigned)
    end
    if len < buflen then
        t:add(f.trailing, tvb(len, buflen - len)):add_proto_expert_info(e.trailing)
    end

    local info = string.format("%s from %s (%s) LBID %d, seq %s, %s/%s, %d conns",
        kind, name, tostring(tvb(32, 4):ipv4()), tvb(10, 2):uint(),
        tostring(tvb(16, 8):uint64()), STATES[tvb(60, 1):uint()] or "?",
        STATES[tvb(61, 1):uint()] or "?", tvb(68, 4):uint())
    if announce then
        local base = HEADER_LEN + name_len
        info = info .. string.format(", generation %s (%d nodes)",
            tostring(tvb(base, 8):uint64()), tvb(base + 8, 2):uint())
    end
    pinfo.cols.info = info .. ", " .. hmac_text
    t:append_text(string.format(", %s from %s, %d bytes", kind, name, len))
    return buflen
end

DissectorTable.get("ip.proto"):add(253, proto)
