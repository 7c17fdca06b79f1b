using System.Runtime.CompilerServices;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// Runs a <see cref="Grammar"/> as a lazily built deterministic automaton: a state is the set of (node, call stack)
/// configurations the output so far can be in, interned so each (state, byte) step is computed once and then read
/// from an array, and each state's token mask (which vocabulary tokens can come next) is computed once by walking
/// the <see cref="TokenTrie"/>. Beyond <see cref="MaxStates"/> interned states it keeps running without storing new
/// ones (slower, never wrong). Shared by every request with the same constraint on the same tokenizer; thread-safe.
/// </summary>
public sealed class GrammarAutomaton
{
    public const int MaxStates = 8192;
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
    }

    private static readonly ConditionalWeakTable<Grammar, ConditionalWeakTable<Gpt2Tokenizer, GrammarAutomaton>> ByGrammar = new();

    private readonly Grammar _grammar;
    private readonly Gpt2Tokenizer? _tokenizer;
    private readonly TokenTrie? _vocabulary;
    private readonly Dictionary<ConfigSet, State> _states = new();
    private readonly Dictionary<(int Return, int Parent), int> _stackIds = new();
    private readonly List<(int Return, int Parent, int Depth)> _stacks = [(-1, -1, 0)]; // id 0: the empty stack
    private readonly Lock _lock = new();
    // Scratch for StepLocked and Closure, reused under the lock: a mask's trie walk steps thousands of times, and
    // fresh collections per step were measured to slow the forward pass beside it (gen0 collections pause the kernels' threads).
    private readonly List<long> _seeds = [];
    private readonly HashSet<long> _seen = [];
    private readonly List<long> _consuming = [];
    private readonly Stack<long> _pending = new();
    private readonly Stack<(int Node, State State)> _walk = new();

    public State Initial { get; }

    private GrammarAutomaton(Grammar grammar, Gpt2Tokenizer? tokenizer)
    {
        _grammar = grammar;
        _tokenizer = tokenizer;
        _vocabulary = tokenizer is null ? null : TokenTrie.For(tokenizer);
        Initial = Closure([((long)grammar.Start << 32) | 0]);
    }

    public static GrammarAutomaton For(Grammar grammar, Gpt2Tokenizer tokenizer) =>
        ByGrammar.GetOrCreateValue(grammar).GetValue(tokenizer, t => new GrammarAutomaton(grammar, t));

    /// <summary>An automaton over bytes only (no token masks): for matching whole texts.</summary>
    internal static GrammarAutomaton Untokenized(Grammar grammar) => new(grammar, null);

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
            return state.Mask = mask;
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
        (state.Next ??= new State?[256])[b] = next;
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
        if (_states.Count < MaxStates) _states[key] = state;
        return state;
    }

    private int? Push(int stack, int returnNode)
    {
        if (_stacks[stack].Depth >= MaxDepth) return null;
        if (_stackIds.TryGetValue((returnNode, stack), out int id)) return id;
        id = _stacks.Count;
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
