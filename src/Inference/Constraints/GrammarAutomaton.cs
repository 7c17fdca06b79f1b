using System.Runtime.CompilerServices;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// Runs a <see cref="Grammar"/> as a lazily built deterministic automaton: a state is the set of (node, call stack)
/// configurations the output so far can be in, interned so each (state, byte) step is computed once and then read
/// from an array, and each state's token mask (which vocabulary tokens can come next) is computed once by walking
/// the <see cref="TokenTrie"/>. Shared by every request with the same constraint on the same tokenizer; thread-safe.
/// What it caches is bounded (a hostile schema or a long-lived popular one must not take the silo's memory): past
/// <see cref="MaxBytes"/> for one automaton, or <see cref="MaxBytesAll"/> for all of them, it stops caching (slower,
/// never wrong) and retires, so the next request with its grammar starts a fresh automaton and this one is collected
/// after its last request.
/// </summary>
public sealed class GrammarAutomaton
{
    public const long MaxBytes = 64L << 20;
    public const long MaxBytesAll = 512L << 20;
    private static long s_bytesAll;
    /// <summary>Deeper nesting than this (calls inside calls) is refused: the output cannot nest past it.</summary>
    public const int MaxDepth = 1024;

    public sealed class State
    {
        internal State(long[] configs, bool accepting)
        {
            Configs = configs;
            Accepting = accepting;
        }

        /// <summary>Each configuration: a node that consumes bytes (high 32 bits) and the id of its call stack (low 32).</summary>
        internal long[] Configs { get; }
        /// <summary>The output so far is complete: the grammar allows it to end here.</summary>
        public bool Accepting { get; }
        /// <summary>More bytes can follow.</summary>
        public bool CanContinue => Configs.Length > 0;
        /// <summary>The output so far is no prefix of an allowed one.</summary>
        public bool IsDead => !Accepting && !CanContinue;
        internal State?[]? Next;
        internal ulong[]? Mask;
        /// <summary>Kept in the automaton's table, so its transitions and mask are worth caching.</summary>
        internal bool Interned;
    }

    private static readonly ConditionalWeakTable<Grammar, ConditionalWeakTable<Gpt2Tokenizer, GrammarAutomaton>> ByGrammar = new();

    private readonly Grammar _grammar;
    private readonly Gpt2Tokenizer? _tokenizer;
    private readonly TokenTrie? _vocabulary;
    private readonly Dictionary<ConfigSet, State> _states = new();
    private readonly Dictionary<(int Return, int Parent), int> _stackIds = new();
    private readonly List<(int Return, int Parent, int Depth)> _stacks = [(-1, -1, 0)]; // id 0: the empty stack
    private readonly Lock _lock = new();
    private readonly long _budget;
    private long _bytes;
    private bool _retired;
    // Scratch for StepLocked and Closure, reused under the lock: a mask's trie walk steps thousands of times, and
    // fresh collections per step were measured to slow the forward pass beside it (gen0 collections pause the kernels' threads).
    private readonly List<long> _seeds = [];
    private readonly HashSet<long> _seen = [];
    private readonly List<long> _consuming = [];
    private readonly Stack<long> _pending = new();
    private readonly Stack<(int Node, State State)> _walk = new();

    public State Initial { get; }

    private GrammarAutomaton(Grammar grammar, Gpt2Tokenizer? tokenizer, long budget)
    {
        _grammar = grammar;
        _tokenizer = tokenizer;
        _budget = budget;
        _vocabulary = tokenizer is null ? null : TokenTrie.For(tokenizer);
        Initial = Closure([((long)grammar.Start << 32) | 0]);
    }

    /// <summary>The automaton requests with this grammar share (a fresh one once the last has retired).</summary>
    public static GrammarAutomaton For(Grammar grammar, Gpt2Tokenizer tokenizer) => For(grammar, tokenizer, MaxBytes);

    internal static GrammarAutomaton For(Grammar grammar, Gpt2Tokenizer tokenizer, long budget) =>
        ByGrammar.GetOrCreateValue(grammar).GetValue(tokenizer, t => new GrammarAutomaton(grammar, t, budget));

    /// <summary>An automaton over bytes only (no token masks): for matching whole texts.</summary>
    internal static GrammarAutomaton Untokenized(Grammar grammar) => new(grammar, null, MaxBytes);

    ~GrammarAutomaton() => Interlocked.Add(ref s_bytesAll, -_bytes);

    /// <summary>It has passed its budget: it caches nothing more, and <see cref="For"/> hands out a fresh one.</summary>
    public bool Retired
    {
        get { lock (_lock) return _retired; }
    }

    /// <summary>Counts <paramref name="bytes"/> as held; past a budget the automaton retires. True while it still caches.</summary>
    private bool Hold(long bytes)
    {
        if (_retired) return false;
        _bytes += bytes;
        if (_bytes > _budget | Interlocked.Add(ref s_bytesAll, bytes) > MaxBytesAll)
        {
            _retired = true;
            if (_tokenizer is not null && ByGrammar.TryGetValue(_grammar, out var byTokenizer)
                && byTokenizer.TryGetValue(_tokenizer, out var current) && ReferenceEquals(current, this))
                byTokenizer.Remove(_tokenizer);
        }
        return !_retired;
    }

    /// <summary>The tokenizer's ordinary vocabulary size: ids at or past it (a padded vocabulary) are never allowed.</summary>
    public int VocabSize => Tokenizer.VocabSize;

    private Gpt2Tokenizer Tokenizer => _tokenizer ?? throw new InvalidOperationException("this automaton has no vocabulary");

    public int InternedStates
    {
        get { lock (_lock) return _states.Count; }
    }

    public State Step(State state, byte b)
    {
        lock (_lock) return StepLocked(state, b);
    }

    public State Advance(State state, ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            foreach (byte b in bytes) state = StepLocked(state, b);
            return state;
        }
    }

    /// <summary>The state after one token: its bytes, or <see cref="Dead"/> for a special token or an id past the vocabulary (never allowed).</summary>
    public State AdvanceToken(State state, int token) =>
        token < Tokenizer.VocabSize && !Tokenizer.IsSpecial(token) ? Advance(state, Tokenizer.TokenBytes(token)) : Dead;

    /// <summary>The tokens that can come next in <paramref name="state"/>: a bitset over the vocabulary (special tokens never; eos is the caller's, when <see cref="State.Accepting"/>).</summary>
    public ulong[] AllowedTokens(State state)
    {
        var trie = _vocabulary ?? throw new InvalidOperationException("this automaton has no vocabulary");
        lock (_lock)
        {
            if (state.Mask is { } cached) return cached;
            var mask = new ulong[(trie.VocabSize + 63) / 64];
            var pending = _walk;
            pending.Clear();
            if (state.CanContinue) pending.Push((0, state));
            while (pending.TryPop(out var at))
                for (int c = trie.ChildStart[at.Node]; c < trie.ChildStart[at.Node + 1]; c++)
                {
                    var next = StepLocked(at.State, trie.ChildByte[c]);
                    if (next.IsDead) continue;
                    int child = trie.ChildNode[c];
                    for (int t = trie.TokenStart[child]; t < trie.TokenStart[child + 1]; t++)
                        mask[trie.Tokens[t] >> 6] |= 1UL << (trie.Tokens[t] & 63);
                    if (next.CanContinue) pending.Push((child, next));
                }
            if (state.Interned && Hold(mask.Length * sizeof(ulong) + 32)) state.Mask = mask;
            return mask;
        }
    }

    /// <summary>No output continues from here (a token the grammar never allows, such as a special one).</summary>
    internal static readonly State Dead = new([], false);

    private State StepLocked(State state, byte b)
    {
        if (!state.CanContinue) return Dead;
        if (state.Next?[b] is { } known) return known;
        var seeds = _seeds;
        seeds.Clear();
        foreach (long config in state.Configs)
        {
            int node = (int)(config >> 32);
            foreach (var edge in _grammar.Bytes[node])
                if (edge.Lo <= b && b <= edge.Hi) seeds.Add(((long)edge.Target << 32) | (uint)config);
        }
        var next = seeds.Count == 0 ? Dead : Closure(seeds);
        if (state.Next is null && state.Interned && Hold(256 * IntPtr.Size + 32)) state.Next = new State?[256];
        if (state.Next is not null) state.Next[b] = next;
        return next;
    }

    /// <summary>Follows ε edges, calls (push the return node) and rule ends (pop) from the seeds; keeps the configurations that consume bytes.</summary>
    private State Closure(List<long> seeds)
    {
        var (seen, consuming, pending) = (_seen, _consuming, _pending);
        seen.Clear();
        consuming.Clear();
        pending.Clear();
        foreach (long seed in seeds) pending.Push(seed);
        bool accepting = false;
        while (pending.TryPop(out long config))
        {
            if (!seen.Add(config)) continue;
            int node = (int)(config >> 32), stack = (int)(uint)config;
            if (_grammar.Bytes[node].Length > 0) consuming.Add(config);
            foreach (int next in _grammar.Epsilons[node]) pending.Push(((long)next << 32) | (uint)stack);
            foreach (var call in _grammar.Calls[node])
                if (Push(stack, call.Return) is int pushed) pending.Push(((long)call.Rule << 32) | (uint)pushed);
            if (_grammar.Ends[node])
            {
                if (stack == 0) accepting = true;
                else pending.Push(((long)_stacks[stack].Return << 32) | (uint)_stacks[stack].Parent);
            }
        }
        if (seen.Count > 4096) { seen.Clear(); seen.TrimExcess(); } // Clear costs its capacity: do not keep a rare huge closure's
        consuming.Sort();
        var key = new ConfigSet(consuming.ToArray(), accepting);
        if (_states.TryGetValue(key, out var interned)) return interned;
        var state = new State(key.Configs, accepting);
        if (Hold(key.Configs.Length * sizeof(long) + 128)) (_states[key] = state).Interned = true;
        return state;
    }

    private int? Push(int stack, int returnNode)
    {
        if (_stacks[stack].Depth >= MaxDepth) return null;
        if (_stackIds.TryGetValue((returnNode, stack), out int id)) return id;
        id = _stacks.Count;
        Hold(48); // always kept (states refer to it); counted while the automaton still caches, so that it retires in time
        _stacks.Add((returnNode, stack, _stacks[stack].Depth + 1));
        _stackIds[(returnNode, stack)] = id;
        return id;
    }

    private readonly struct ConfigSet(long[] configs, bool accepting) : IEquatable<ConfigSet>
    {
        public long[] Configs { get; } = configs;
        private readonly bool _accepting = accepting;
        private readonly int _hash = Hash(configs, accepting);

        private static int Hash(long[] configs, bool accepting)
        {
            var h = new HashCode();
            h.Add(accepting);
            foreach (long c in configs) h.Add(c);
            return h.ToHashCode();
        }

        public bool Equals(ConfigSet other) => _hash == other._hash && _accepting == other._accepting && Configs.AsSpan().SequenceEqual(other.Configs);
        public override bool Equals(object? obj) => obj is ConfigSet other && Equals(other);
        public override int GetHashCode() => _hash;
    }
}
