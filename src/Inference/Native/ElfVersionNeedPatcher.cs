using System.Buffers.Binary;
using System.Text;

namespace Gpt2Orleans.Inference.Native;

/// <summary>
/// Makes one symbol-version requirement of an ELF64 shared library weak, in place, on a byte array.
/// Why our own code: no maintained .NET library edits ELF version sections, and the change is two fields.
/// The loader then accepts a host library that lacks the version (VER_FLG_WEAK), and the symbols that
/// were bound to it are re-marked as unversioned (.gnu.version index 1) so lookup does not demand it.
/// </summary>
public static class ElfVersionNeedPatcher
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;
    private const uint ShtDynsym = 11;
    private const ushort VerFlagWeak = 0x2;

    /// <summary>Returns the names of the symbols that carried <paramref name="versionName"/>; empty if none did.</summary>
    public static IReadOnlyList<string> MakeVersionWeak(byte[] elf, string library, string versionName)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("only little-endian ELF64 is supported");

        var sections = ReadSections(elf);
        var verneed = sections.FirstOrDefault(s => s.Type == ShtGnuVerneed)
            ?? throw new InvalidDataException("no .gnu.version_r section");
        var versym = sections.FirstOrDefault(s => s.Type == ShtGnuVersym)
            ?? throw new InvalidDataException("no .gnu.version section");
        var dynsym = sections.FirstOrDefault(s => s.Type == ShtDynsym)
            ?? throw new InvalidDataException("no .dynsym section");
        var verneedStrings = sections[(int)verneed.Link];
        var dynsymStrings = sections[(int)dynsym.Link];

        int versionIndex = -1;
        long needOffset = verneed.Offset;
        for (uint i = 0; i < verneed.Info; i++)
        {
            ushort count = U16(elf, needOffset + 2);
            string file = CString(elf, verneedStrings.Offset + U32(elf, needOffset + 4));
            long auxOffset = needOffset + U32(elf, needOffset + 8);
            for (int a = 0; a < count; a++)
            {
                string name = CString(elf, verneedStrings.Offset + U32(elf, auxOffset + 8));
                if (file == library && name == versionName)
                {
                    ushort flags = U16(elf, auxOffset + 4);
                    BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan((int)auxOffset + 4), (ushort)(flags | VerFlagWeak));
                    versionIndex = U16(elf, auxOffset + 6);
                }
                auxOffset += U32(elf, auxOffset + 12);
            }
            needOffset += U32(elf, needOffset + 12);
        }
        if (versionIndex < 0) return [];

        var symbols = new List<string>();
        long symbolCount = dynsym.Size / 24;
        for (long s = 0; s < symbolCount; s++)
        {
            long entry = versym.Offset + 2 * s;
            if ((U16(elf, entry) & 0x7fff) != versionIndex) continue;
            BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan((int)entry), 1);
            symbols.Add(CString(elf, dynsymStrings.Offset + U32(elf, dynsym.Offset + 24 * s)));
        }
        return symbols;
    }

    private sealed record Section(uint Type, long Offset, long Size, uint Link, uint Info);

    private static List<Section> ReadSections(byte[] elf)
    {
        long tableOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x28));
        int entrySize = U16(elf, 0x3A);
        int count = U16(elf, 0x3C);
        if (entrySize < 64 || tableOffset + (long)entrySize * count > elf.Length)
            throw new InvalidDataException("section header table out of range");
        var sections = new List<Section>(count);
        for (int i = 0; i < count; i++)
        {
            long h = tableOffset + (long)i * entrySize;
            var section = new Section(
                Type: U32(elf, h + 4),
                Offset: (long)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan((int)h + 0x18)),
                Size: (long)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan((int)h + 0x20)),
                Link: U32(elf, h + 0x28),
                Info: U32(elf, h + 0x2C));
            if (section.Type != 8 /* SHT_NOBITS */ && section.Offset + section.Size > elf.Length)
                throw new InvalidDataException($"section {i} out of range");
            sections.Add(section);
        }
        return sections;
    }

    private static ushort U16(byte[] b, long at) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(checked((int)at)));
    private static uint U32(byte[] b, long at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(checked((int)at)));

    private static string CString(byte[] b, long at)
    {
        int start = checked((int)at);
        int end = Array.IndexOf(b, (byte)0, start);
        if (end < 0) throw new InvalidDataException("unterminated string in ELF string table");
        return Encoding.ASCII.GetString(b, start, end - start);
    }
}
